// HTTPS with a generated self-signed certificate: the API, the cookies (Secure) and the
// machine-host handshake all work over it.
import assert from 'node:assert/strict';
import { request } from 'node:https';
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
