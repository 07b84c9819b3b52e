import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { hashSecret } from '../auth/secrets.js';
import { ApiClient, startTestServer, type TestServer } from '../test-support/test-server.js';

const PASSWORD = 'correct horse battery';
let server: TestServer;
let ipCounter = 0;
/** A fresh client address per test, so the per-IP login limit is exercised only on purpose. */
const freshIp = () => ({
  'x-forwarded-for': `10.0.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`,
});

function sessionOf(res: { headers: Headers }): string {
  const match = /snapvm_session=([^;]*)/.exec(res.headers.get('set-cookie') ?? '');
  assert.ok(match, 'a session cookie is set');
  return match[1] ?? '';
}

async function signUp(email: string, headers: Record<string, string> = freshIp()) {
  return server
    .client()
    .post('/api/v1/auth/signup', { email, password: PASSWORD, name: 'N' }, headers);
}

describe('signup, login and sessions', () => {
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (chunk) => {
    logText += chunk;
  });

  before(async () => {
    server = await startTestServer({
      env: { SNAPVM_LOG_LEVEL: 'info' },
      logStream: logs,
      loginLimits: { perAccount: 3, perIp: 8, windowSeconds: 600 },
    });
  });
  after(() => server?.close());

  test('signup returns the user and a HttpOnly, SameSite=Lax session cookie', async () => {
    const res = await signUp('Alice@Example.com');
    assert.equal(res.status, 201);
    assert.deepEqual(Object.keys(res.body).sort(), ['email', 'id', 'name']);
    assert.equal(res.body.email, 'alice@example.com');
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.doesNotMatch(cookie, /Secure/, 'plain http: no Secure flag');
    const me = await server.client({ session: sessionOf(res) }).get('/api/v1/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.user.email, 'alice@example.com');
    assert.deepEqual(me.body.orgs, []);
  });

  test('the cookie is Secure when the server is reached over HTTPS', async () => {
    const res = await signUp('secure@example.com', { ...freshIp(), 'x-forwarded-proto': 'https' });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('set-cookie') ?? '', /; Secure/);
  });

  test('passwords are stored as argon2id hashes', async () => {
    await signUp('hashed@example.com');
    const [row] = await server.db.asSystem((tx) =>
      tx.query<{ password_hash: string }>(
        `SELECT password_hash FROM users WHERE email = 'hashed@example.com'`,
      ),
    );
    assert.match(row?.password_hash ?? '', /^\$argon2id\$/);
  });

  test('an email can sign up only once', async () => {
    await signUp('twice@example.com');
    const again = await signUp('TWICE@example.com');
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'email_taken');
  });

  test('unknown email and wrong password get the same 401', async () => {
    await signUp('bob@example.com');
    const wrong = await server
      .client()
      .post('/api/v1/auth/login', { email: 'bob@example.com', password: 'nope-nope' }, freshIp());
    const unknown = await server
      .client()
      .post(
        '/api/v1/auth/login',
        { email: 'nobody@example.com', password: 'nope-nope' },
        freshIp(),
      );
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
    const ok = await server
      .client()
      .post('/api/v1/auth/login', { email: 'BOB@example.com', password: PASSWORD }, freshIp());
    assert.equal(ok.status, 200);
    assert.equal(ok.body.email, 'bob@example.com');
  });

  test('logout revokes the session', async () => {
    const session = sessionOf(await signUp('carol@example.com'));
    const client = server.client({ session });
    assert.equal((await client.post('/api/v1/auth/logout')).status, 204);
    assert.equal((await client.get('/api/v1/me')).status, 401);
  });

  test('a user can see their sessions and sign another one out', async () => {
    const laptop = sessionOf(await signUp('kim@example.com'));
    const phone = sessionOf(
      await server
        .client()
        .post(
          '/api/v1/auth/login',
          { email: 'kim@example.com', password: PASSWORD },
          { ...freshIp(), 'user-agent': 'phone' },
        ),
    );
    const fromLaptop = server.client({ session: laptop });
    const listed = await fromLaptop.get('/api/v1/me/sessions');
    assert.equal(listed.body.items.length, 2);
    const phoneSession = listed.body.items.find(
      (s: { userAgent: string }) => s.userAgent === 'phone',
    );
    assert.equal(phoneSession.current, false);
    assert.equal((await fromLaptop.delete(`/api/v1/me/sessions/${phoneSession.id}`)).status, 204);
    assert.equal((await server.client({ session: phone }).get('/api/v1/me')).status, 401);
    assert.equal((await fromLaptop.get('/api/v1/me')).status, 200);
    const stranger = server.client({ session: sessionOf(await signUp('lee@example.com')) });
    const mine = (await fromLaptop.get('/api/v1/me/sessions')).body.items[0].id;
    assert.equal((await stranger.delete(`/api/v1/me/sessions/${mine}`)).status, 404);
  });

  test('an expired session is refused', async () => {
    const session = sessionOf(await signUp('dave@example.com'));
    await server.db.asSystem((tx) =>
      tx.query(
        `UPDATE auth_sessions SET expires_at = now() - interval '1 second'
                 WHERE token_hash = $1`,
        [hashSecret(session)],
      ),
    );
    const me = await server.client({ session }).get('/api/v1/me');
    assert.equal(me.status, 401);
    assert.equal(me.body.error.code, 'unauthorized');
  });

  test('login is rate-limited per account, with Retry-After', async () => {
    await signUp('eve@example.com');
    const attempt = (password: string) =>
      server.client().post('/api/v1/auth/login', { email: 'eve@example.com', password }, freshIp());
    for (let i = 0; i < 3; i++) assert.equal((await attempt('wrong-password')).status, 401);
    const limited = await attempt(PASSWORD);
    assert.equal(limited.status, 429, 'even the right password waits out the window');
    assert.equal(limited.body.error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  });

  test('login is rate-limited per IP across accounts', async () => {
    const ip = freshIp();
    const statuses = [];
    for (let i = 0; i < 9; i++)
      statuses.push(
        (
          await server
            .client()
            .post('/api/v1/auth/login', { email: `x${i}@example.com`, password: 'whatever1' }, ip)
        ).status,
      );
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 429]);
  });

  test('cookie-authenticated changes from a foreign origin are refused', async () => {
    const session = sessionOf(await signUp('frank@example.com'));
    const client = server.client({ session });
    const foreign = await client.post(
      '/api/v1/orgs',
      { slug: 'evil', name: 'Evil' },
      { origin: 'http://evil.example' },
    );
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error.code, 'foreign_origin');
    const crossSite = await client.post(
      '/api/v1/orgs',
      { slug: 'evil', name: 'Evil' },
      { 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(crossSite.status, 403);
    const sameOrigin = await client.post(
      '/api/v1/orgs',
      { slug: 'frank', name: 'Frank' },
      { origin: server.config.publicUrl, 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(sameOrigin.status, 201);
    const login = await server
      .client()
      .post(
        '/api/v1/auth/login',
        { email: 'frank@example.com', password: PASSWORD },
        { ...freshIp(), origin: 'http://evil.example' },
      );
    assert.equal(login.status, 403, 'no login CSRF either');
  });

  test('API tokens: shown once, stored as a hash, listed without secret, revocable', async () => {
    const session = sessionOf(await signUp('grace@example.com'));
    const owner = server.client({ session });
    const created = await owner.post('/api/v1/me/tokens', { name: 'ci' });
    assert.equal(created.status, 201);
    const secret: string = created.body.token;
    assert.match(secret, /^snapvm_tok_/);
    const [stored] = await server.db.asSystem((tx) =>
      tx.query<{ token_hash: string }>('SELECT token_hash FROM api_tokens WHERE id = $1', [
        created.body.id,
      ]),
    );
    assert.equal(stored?.token_hash, hashSecret(secret));
    const listed = await owner.get('/api/v1/me/tokens');
    assert.equal(listed.body.items.length, 1);
    assert.equal(listed.body.items[0].token, undefined);
    assert.ok(!listed.text.includes(secret));

    const bearer = server.client({ token: secret });
    assert.equal((await bearer.get('/api/v1/me')).body.user.email, 'grace@example.com');
    const foreignButBearer = await bearer.post(
      '/api/v1/orgs',
      { slug: 'grace', name: 'Grace' },
      { origin: 'http://elsewhere.example' },
    );
    assert.equal(foreignButBearer.status, 201, 'bearer requests need no origin check');
    assert.equal((await bearer.get('/api/v1/orgs/grace/machines')).status, 200);

    assert.equal((await owner.delete(`/api/v1/me/tokens/${created.body.id}`)).status, 204);
    assert.equal((await bearer.get('/api/v1/me')).status, 401);
    assert.equal((await bearer.get('/api/v1/orgs/grace/machines')).status, 401);
    assert.equal((await owner.delete(`/api/v1/me/tokens/${created.body.id}`)).status, 404);
  });

  test("a token's expiry is enforced, and a past expiry is refused", async () => {
    const owner = server.client({ session: sessionOf(await signUp('heidi@example.com')) });
    const past = await owner.post('/api/v1/me/tokens', {
      name: 'old',
      expiresAt: '2000-01-01T00:00:00Z',
    });
    assert.equal(past.status, 400);
    assert.match(past.body.error.message, /body\.expiresAt/);
    const soon = await owner.post('/api/v1/me/tokens', {
      name: 'soon',
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    assert.equal(soon.status, 201);
    const bearer = server.client({ token: soon.body.token });
    assert.equal((await bearer.get('/api/v1/me')).status, 200);
    await server.db.asSystem((tx) =>
      tx.query(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        soon.body.id,
      ]),
    );
    assert.equal((await bearer.get('/api/v1/me')).status, 401);
  });

  test("a user cannot revoke another user's token", async () => {
    const a = server.client({ session: sessionOf(await signUp('ivan@example.com')) });
    const b = server.client({ session: sessionOf(await signUp('judy@example.com')) });
    const token = await a.post('/api/v1/me/tokens', { name: 'mine' });
    assert.equal((await b.delete(`/api/v1/me/tokens/${token.body.id}`)).status, 404);
    assert.equal((await server.client({ token: token.body.token }).get('/api/v1/me')).status, 200);
  });

  test('no password, session cookie, API token or invitation token reaches the logs', async () => {
    const res = await signUp('logs@example.com');
    const session = sessionOf(res);
    const client = server.client({ session });
    const token = (await client.post('/api/v1/me/tokens', { name: 'x' })).body.token;
    await client.post('/api/v1/orgs', { slug: 'logs', name: 'Logs' });
    const invite = await client.post('/api/v1/orgs/logs/invitations', {
      email: 'someone@example.com',
      role: 'member',
    });
    await client.post(`/api/v1/invitations/${invite.body.token}/accept`);
    await server.client({ token }).get('/api/v1/me');
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(logText.includes('request completed'), 'requests are logged');
    for (const secret of [PASSWORD, session, token, invite.body.token])
      assert.ok(!logText.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 12)}`);
  });
});

describe('invite-only signup', () => {
  let closed: TestServer;
  before(async () => {
    closed = await startTestServer({ env: { SNAPVM_SIGNUP: 'invite-only' } });
  });
  after(() => closed?.close());

  test('after the first user, only invited emails may sign up', async () => {
    const anonymous = new ApiClient(closed.url);
    const body = (email: string) => ({ email, password: PASSWORD, name: 'N' });
    const first = await anonymous.post('/api/v1/auth/signup', body('first@example.com'));
    assert.equal(first.status, 201);
    const stranger = await anonymous.post('/api/v1/auth/signup', body('stranger@example.com'));
    assert.equal(stranger.status, 403);
    assert.equal(stranger.body.error.code, 'signup_closed');
    const admin = closed.client({ session: sessionOf(first) });
    await admin.post('/api/v1/orgs', { slug: 'team', name: 'Team' });
    await admin.post('/api/v1/orgs/team/invitations', {
      email: 'invited@example.com',
      role: 'member',
    });
    const invited = await anonymous.post('/api/v1/auth/signup', body('Invited@example.com'));
    assert.equal(invited.status, 201);
  });
});
