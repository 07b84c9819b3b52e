import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../test-support/test-server.js';

let server: TestServer;
let owner: Awaited<ReturnType<TestServer['signUp']>>;

/** Asserts a 4xx error envelope whose message names `field`. */
function assertRefused(
  res: { status: number; body: { error?: { code: string; message: string } }; text: string },
  status: number,
  field: RegExp,
) {
  assert.equal(res.status, status, res.text);
  assert.ok(res.body?.error?.code, `an error envelope: ${res.text}`);
  assert.match(res.body.error?.message ?? '', field);
}

describe('bad input', () => {
  before(async () => {
    server = await startTestServer();
    owner = await server.signUp('owner');
    await owner.post('/api/v1/orgs', { slug: 'acme', name: 'Acme' });
    await owner.post('/api/v1/orgs/acme/machines', { name: 'web' });
  });
  after(() => server?.close());

  test('malformed JSON is a 400 about the body', async () => {
    const res = await owner.post('/api/v1/orgs', '{"slug": "x",');
    assertRefused(res, 400, /body/);
    assert.equal(res.body.error.code, 'invalid_json');
    assertRefused(await server.client().post('/api/v1/auth/login', '{'), 400, /body/);
  });

  test('wrong types name the field', async () => {
    assertRefused(await owner.post('/api/v1/orgs', { slug: 5, name: 'X' }), 400, /body\.slug/);
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/machines/web', { httpPort: 'eighty' }),
      400,
      /body\.httpPort/,
    );
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/machines/web', { httpPort: 70000 }),
      400,
      /body\.httpPort/,
    );
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/machines/web', { urlAccess: 'everyone' }),
      400,
      /body\.urlAccess/,
    );
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/machines/web', { idle: { suspendAfterSeconds: 1 } }),
      400,
      /body\.idle\.suspendAfterSeconds/,
    );
    assertRefused(
      await owner.patch('/api/v1/orgs/acme', { idle: { stopAfterSeconds: -1 } }),
      400,
      /body\.idle\.stopAfterSeconds/,
    );
    assertRefused(
      await owner.post('/api/v1/orgs/acme/machines', { name: 'big', size: 'huge' }),
      400,
      /body\.size/,
    );
    assertRefused(await owner.post('/api/v1/orgs', [1, 2]), 400, /body/);
  });

  test('missing fields name the field', async () => {
    const anonymous = server.client();
    assertRefused(
      await anonymous.post('/api/v1/auth/signup', { password: 'long enough', name: 'N' }),
      400,
      /body\.email/,
    );
    assertRefused(
      await anonymous.post('/api/v1/auth/signup', { email: 'x@example.com', name: 'N' }),
      400,
      /body\.password/,
    );
    assertRefused(await owner.post('/api/v1/orgs', { slug: 'ok' }), 400, /body\.name/);
    assertRefused(await owner.post('/api/v1/orgs/acme/machines', {}), 400, /body\.name/);
    assertRefused(await owner.post('/api/v1/orgs/acme/machines'), 400, /body/);
  });

  test('a body over 1 MiB is a 413', async () => {
    const huge = JSON.stringify({ slug: 'big', name: 'x'.repeat(1024 * 1024 + 10) });
    const res = await owner.post('/api/v1/orgs', huge);
    assertRefused(res, 413, /body/);
  });

  test('invalid names are refused with the rule they break', async () => {
    assertRefused(
      await owner.post('/api/v1/orgs', { slug: 'Acme', name: 'A' }),
      400,
      /body\.slug: .*lowercase/,
    );
    assertRefused(
      await owner.post('/api/v1/orgs', { slug: 'a--b', name: 'A' }),
      400,
      /body\.slug: .*two hyphens/,
    );
    assertRefused(
      await owner.post('/api/v1/orgs/acme/machines', { name: 'x'.repeat(31) }),
      400,
      /body\.name: .*30/,
    );
    assertRefused(
      await owner.post('/api/v1/orgs/acme/machines', { name: '9lives' }),
      400,
      /body\.name: .*start with a letter/,
    );
    assertRefused(await owner.get('/api/v1/orgs/acme/machines/Bad_Name'), 400, /params\.machine/);
    assertRefused(await owner.get('/api/v1/orgs/NOPE/machines'), 400, /params\.org/);
    assertRefused(
      await owner.post('/api/v1/auth/signup', {
        email: 'not-an-email',
        password: 'long enough',
        name: 'N',
      }),
      400,
      /body\.email/,
    );
  });

  test('an unknown org or machine is a 404 that names it', async () => {
    assertRefused(await owner.get('/api/v1/orgs/nope/machines'), 404, /Organization "nope"/);
    assertRefused(await owner.get('/api/v1/orgs/acme/machines/ghost'), 404, /Machine "ghost"/);
    assertRefused(await owner.get('/api/v1/no/such/route'), 404, /GET \/api\/v1\/no\/such\/route/);
  });

  test('bad query, path ids, cursors, extra fields and media types are 4xx', async () => {
    assertRefused(
      await owner.get('/api/v1/orgs/acme/machines?limit=1000'),
      400,
      /querystring\.limit/,
    );
    assertRefused(
      await owner.get('/api/v1/orgs/acme/machines?limit=abc'),
      400,
      /querystring\.limit/,
    );
    assertRefused(
      await owner.get('/api/v1/orgs/acme/machines?cursor=garbage'),
      400,
      /querystring\.cursor/,
    );
    assertRefused(
      await owner.get('/api/v1/orgs/acme/audit?cursor=WyJ4Il0'),
      400,
      /querystring\.cursor/,
    );
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/members/not-a-uuid', { role: 'admin' }),
      400,
      /params\.userId/,
    );
    assertRefused(await owner.delete('/api/v1/me/tokens/42'), 400, /params\.id/);
    assertRefused(
      await owner.patch('/api/v1/orgs/acme/machines/web', { state: 'started' }),
      400,
      /body/,
    );
    const text = await owner.request('POST', '/api/v1/orgs', 'slug=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assertRefused(text, 415, /body/);
  });
});
