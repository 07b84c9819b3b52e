// The services API against the database alone (no machines run): definitions are the
// control plane's, checked here even while the machine is stopped.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type ApiClient, startTestServer, type TestServer } from '../test-support/test-server.js';

const S = '/api/v1/orgs/acme/machines/box/services';

describe('service definitions', () => {
  let server: TestServer;
  let owner: ApiClient;

  before(async () => {
    server = await startTestServer();
    owner = await server.signUp('owner');
    await owner.post('/api/v1/orgs', { slug: 'acme', name: 'Acme' });
    await owner.post('/api/v1/orgs/acme/machines', { name: 'box' });
  });
  after(() => server?.close());

  test('a definition is created, replaced, listed with a stopped status, and deleted', async () => {
    const created = await owner.request('PUT', `${S}/db`, { command: 'postgres', env: { A: '1' } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.status, 'stopped');
    assert.equal(created.body.restart, 'always');
    const replaced = await owner.request('PUT', `${S}/db`, { command: 'postgres', args: ['-k'] });
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.body.args, ['-k']);
    assert.deepEqual(replaced.body.env, {});
    const list = await owner.get(S);
    assert.deepEqual(
      list.body.items.map((s: { name: string }) => s.name),
      ['db'],
    );
    assert.equal(list.body.nextCursor, null);
    assert.equal((await owner.delete(`${S}/db`)).status, 204);
    assert.equal((await owner.get(`${S}/db`)).status, 404);
    assert.equal((await owner.delete(`${S}/db`)).status, 404);
  });

  test('dependencies must exist, may not form a cycle, and keep what they need from deletion', async () => {
    const missing = await owner.request('PUT', `${S}/app`, { command: 'app', dependsOn: ['db'] });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.error.code, 'dependency_missing');
    assert.match(missing.body.error.message, /^dependsOn: /);

    assert.equal((await owner.request('PUT', `${S}/db`, { command: 'db' })).status, 201);
    assert.equal(
      (await owner.request('PUT', `${S}/app`, { command: 'app', dependsOn: ['db'] })).status,
      201,
    );
    const cycle = await owner.request('PUT', `${S}/db`, { command: 'db', dependsOn: ['app'] });
    assert.equal(cycle.status, 409);
    assert.equal(cycle.body.error.code, 'dependency_cycle');
    assert.match(cycle.body.error.message, /db → app → db|app → db → app/);
    const self = await owner.request('PUT', `${S}/solo`, { command: 'x', dependsOn: ['solo'] });
    assert.equal(self.status, 409);

    const inUse = await owner.delete(`${S}/db`);
    assert.equal(inUse.status, 409);
    assert.equal(inUse.body.error.code, 'service_in_use');
    assert.match(inUse.body.error.message, /"app"/);
    assert.equal((await owner.delete(`${S}/app`)).status, 204);
    assert.equal((await owner.delete(`${S}/db`)).status, 204);
  });

  test("one service claims the machine's HTTP port", async () => {
    assert.equal(
      (await owner.request('PUT', `${S}/web`, { command: 'w', httpPort: 3000 })).status,
      201,
    );
    const second = await owner.request('PUT', `${S}/api`, { command: 'a', httpPort: 4000 });
    assert.equal(second.status, 409);
    assert.equal(second.body.error.code, 'http_port_claimed');
    assert.equal(
      (await owner.request('PUT', `${S}/web`, { command: 'w', httpPort: 3001 })).status,
      200,
    );
    assert.equal((await owner.delete(`${S}/web`)).status, 204);
  });

  test('bad definitions are 400s naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /command/],
      [{ command: 'x', restart: 'sometimes' }, /restart/],
      [{ command: 'x', httpPort: 70000 }, /httpPort/],
      [{ command: 'x', env: { 'BAD-NAME': '1' } }, /env/],
      [{ command: 'x', surprise: true }, /surprise|unrecognized/i],
    ];
    for (const [body, field] of cases) {
      const res = await owner.request('PUT', `${S}/bad`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error.message, field);
    }
    const badName = await owner.request('PUT', `${S}/Bad_Name!`, { command: 'x' });
    assert.equal(badName.status, 400);
    assert.match(badName.body.error.message, /service/);
  });

  test("another member sees neither the machine's services nor can change them", async () => {
    const member = await server.signUp('member');
    const invitation = await owner.post('/api/v1/orgs/acme/invitations', {
      email: member.user.email,
      role: 'member',
    });
    await member.post(`/api/v1/invitations/${invitation.body.token}/accept`);
    assert.equal((await member.get(S)).status, 404);
    assert.equal((await member.request('PUT', `${S}/x`, { command: 'x' })).status, 404);
  });
});

describe('the console on the main origin', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  test('every page path is the app, assets are immutable, the API keeps its JSON 404', async () => {
    for (const path of ['/', '/orgs/acme/machines/box', '/signin?next=%2F']) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.match(await res.text(), /<div id="root">|<script/);
    }
    const html = await (await fetch(server.url)).text();
    const asset = /(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, html);
    const js = await fetch(server.url + asset);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(`${server.url}/assets/nope.js`)).status, 404);
    const api = await fetch(`${server.url}/api/v1/nope`);
    assert.equal(api.status, 404);
    assert.equal(((await api.json()) as { error: { code: string } }).error.code, 'not_found');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    for (const path of [
      '/assets/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/..%2f..%2f..%2fetc/passwd',
    ]) {
      const res = await rawGet(server.url, path);
      assert.doesNotMatch(res.body, /root:/, path);
    }
    assert.equal((await rawGet(server.url, '/%E0%A4%A')).status, 400);
  });
});

/** A GET whose path goes out exactly as written (fetch would normalize it). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
