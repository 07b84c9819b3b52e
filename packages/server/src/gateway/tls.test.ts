// HTTPS with a generated self-signed certificate: the API, the cookies (Secure) and the
// machine-host handshake all work over it. Also an operator's own wildcard certificate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../test-support/test-server.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('HTTPS', () => {
  let server: TestServer;
  let port: number;

  const call = (
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request(
        // The certificate is self-signed: this test trusts it, browsers would ask.
        { host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false },
        (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  before(async () => {
    server = await startTestServer({ env: { SNAPVM_TLS: 'self-signed' } });
    port = Number(new URL(server.url).port);
  });
  after(() => server?.close());

  test('the server speaks TLS and its session cookie is Secure', async () => {
    assert.match(server.url, /^https:/);
    const signup = await call(
      'POST',
      '/api/v1/auth/signup',
      { 'content-type': 'application/json' },
      JSON.stringify({ email: 'tls@example.com', password: 'correct horse battery', name: 'T' }),
    );
    assert.equal(signup.status, 201, signup.body);
    const cookie = String(signup.headers['set-cookie']);
    assert.match(cookie, /; Secure/);
    const session = /snapvm_session=([^;]+)/.exec(cookie)?.[1] ?? '';

    const host = `box--acme.localhost:${port}`;
    const anonymous = await call('GET', '/', { host });
    assert.equal(anonymous.status, 401);
    const handshake = await call(
      'GET',
      `/api/v1/app-auth?return=${encodeURIComponent(`https://${host}/page`)}`,
      { cookie: `snapvm_session=${session}` },
    );
    assert.equal(handshake.status, 302);
    const back = new URL(handshake.headers.location as string);
    assert.equal(back.origin, `https://${host}`);
    const redeemed = await call('GET', back.pathname + back.search, { host });
    assert.equal(redeemed.status, 302);
    assert.match(
      String(redeemed.headers['set-cookie']),
      /; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure/,
    );
  });

  test('only machine URLs of this server are handed tickets', async () => {
    for (const target of ['https://evil.example.com/', 'javascript:alert(1)', 'not a url']) {
      const res = await call('GET', `/api/v1/app-auth?return=${encodeURIComponent(target)}`);
      assert.equal(res.status, 400, target);
      assert.match(res.body, /return/);
    }
  });
});

describe("HTTPS with the operator's certificate", () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapvm-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  let server: TestServer | undefined;

  before(() => {
    // A private CA and a wildcard certificate for the apps domain it signs, as an operator
    // would get from their own CA or ACME.
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(
      'req',
      '-x509',
      ...ec,
      '-days',
      '2',
      '-subj',
      '/CN=Test CA',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
    );
    openssl(
      'req',
      ...ec,
      '-subj',
      '/CN=localhost',
      '-keyout',
      file('site.key'),
      '-out',
      file('site.csr'),
    );
    writeFileSync(file('ext'), 'subjectAltName=DNS:localhost,DNS:*.apps.example.test\n');
    openssl(
      'x509',
      '-req',
      '-in',
      file('site.csr'),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      file('ext'),
      '-out',
      file('site.crt'),
    );
    openssl(
      'req',
      ...ec,
      '-subj',
      '/CN=other',
      '-keyout',
      file('other.key'),
      '-out',
      file('other.csr'),
    );
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('machine hosts are served under the wildcard, verified against its CA', async () => {
    server = await startTestServer({
      env: {
        SNAPVM_TLS_CERT: file('site.crt'),
        SNAPVM_TLS_KEY: file('site.key'),
        // Clients accept a wildcard only below a registrable-looking name, not *.localhost.
        SNAPVM_APPS_DOMAIN: 'apps.example.test',
      },
    });
    const port = Number(new URL(server.url).port);
    const ca = readFileSync(file('ca.crt'));
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        // Verification on (the default): only the operator's certificate passes it.
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/',
            servername: host,
            ca,
            headers: { host: `${host}:${port}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await get('box--acme.apps.example.test'), 401, 'a machine host, anonymous');
    assert.equal(await get('localhost'), 200, 'the main origin');
  });

  test("a key that is not the certificate's, or a missing file, stops the start naming the setting", async () => {
    await assert.rejects(
      startTestServer({
        env: { SNAPVM_TLS_CERT: file('site.crt'), SNAPVM_TLS_KEY: file('other.key') },
      }),
      /SNAPVM_TLS_KEY: .*other\.key is not the key of/,
    );
    await assert.rejects(
      startTestServer({
        env: { SNAPVM_TLS_CERT: file('missing.crt'), SNAPVM_TLS_KEY: file('site.key') },
      }),
      /SNAPVM_TLS_CERT: cannot read .*missing\.crt \(ENOENT\)/,
    );
  });
});
