import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Database } from '../db/database.js';
import {
  openTestDatabase,
  prepareTestDatabase,
  type TestDatabaseHandle,
} from '../test-support/test-server.js';
import { AppAuth, appCookieName } from './app-auth.js';
import { parseAppHost } from './app-host.js';

describe('machine hosts', () => {
  test('a machine host names its machine and org; anything else is the main origin', () => {
    assert.deepEqual(parseAppHost('web--acme.localhost:8080', 'localhost'), {
      machine: 'web',
      org: 'acme',
      hostname: 'web--acme.localhost',
    });
    assert.deepEqual(parseAppHost('WEB--Acme.apps.example.com', 'apps.example.com'), {
      machine: 'web',
      org: 'acme',
      hostname: 'web--acme.apps.example.com',
    });
    for (const host of [
      undefined,
      'localhost:8080',
      '127.0.0.1:8080',
      'web.localhost',
      'a.web--acme.localhost',
      'web--acme.localhost.evil.com',
      'web---acme.localhost',
      '--acme.localhost',
      'web--.localhost',
      'web--acme.example.com',
    ])
      assert.equal(parseAppHost(host, 'localhost'), null, String(host));
  });
});

describe('machine-host sign-in', () => {
  let handle: TestDatabaseHandle;
  let db: Database;
  const identity = { userId: randomUUID(), sessionId: randomUUID() };

  before(async () => {
    handle = await prepareTestDatabase();
    db = await openTestDatabase(handle);
    await db.asSystem(async (tx) => {
      await tx.query(
        `INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'a@example.com', 'A', 'x')`,
        [identity.userId],
      );
      await tx.query(
        `INSERT INTO auth_sessions (id, user_id, token_hash, expires_at)
         VALUES ($1, $2, 'h', now() + interval '1 hour')`,
        [identity.sessionId, identity.userId],
      );
    });
  });
  after(async () => {
    await db?.close();
    await handle?.cleanup();
  });

  test('a ticket works once, only on the host it was issued for', async () => {
    const auth = new AppAuth(randomBytes(32), db);
    const ticket = await auth.issueTicket(identity, 'web--acme.localhost');
    assert.equal(await auth.redeemTicket(ticket, 'other--acme.localhost'), null);
    const again = await auth.issueTicket(identity, 'web--acme.localhost');
    assert.deepEqual(await auth.redeemTicket(again, 'web--acme.localhost'), identity);
    assert.equal(await auth.redeemTicket(again, 'web--acme.localhost'), null, 'single use');
    assert.equal(
      await auth.redeemTicket(ticket, 'web--acme.localhost'),
      null,
      'burnt by the wrong host',
    );
    assert.equal(await auth.redeemTicket('made-up', 'web--acme.localhost'), null);
  });

  test('a ticket issued by one server is redeemed by another sharing the database, once', async () => {
    const issuer = new AppAuth(randomBytes(32), db);
    const other = new AppAuth(randomBytes(32), db);
    const ticket = await issuer.issueTicket(identity, 'web--acme.localhost');
    assert.deepEqual(await other.redeemTicket(ticket, 'web--acme.localhost'), identity);
    assert.equal(await issuer.redeemTicket(ticket, 'web--acme.localhost'), null);
  });

  test('an expired ticket is refused, and swept by the next issue', async () => {
    const auth = new AppAuth(randomBytes(32), db);
    const stale = await auth.issueTicket(identity, 'web--acme.localhost');
    await db.asSystem((tx) =>
      tx.query(`UPDATE app_login_tickets SET expires_at = now() - interval '1 second'`),
    );
    assert.equal(await auth.redeemTicket(stale, 'web--acme.localhost'), null);
    await auth.issueTicket(identity, 'web--acme.localhost');
    await auth.issueTicket(identity, 'db--acme.localhost');
    await db.asSystem((tx) =>
      tx.query(`UPDATE app_login_tickets SET expires_at = now() - interval '1 second'`),
    );
    await auth.issueTicket(identity, 'web--acme.localhost');
    const [left] = await db.asSystem((tx) =>
      tx.query<{ n: number }>('SELECT count(*)::int AS n FROM app_login_tickets'),
    );
    assert.equal(left?.n, 1, 'only the fresh ticket is left');
  });

  test('a cookie is bound to its host and to the signing key, and cannot be edited', () => {
    const auth = new AppAuth(randomBytes(32), db);
    const value = auth.cookieValue(identity, 'web--acme.localhost');
    assert.deepEqual(auth.readCookie(value, 'web--acme.localhost'), identity);
    assert.equal(auth.readCookie(value, 'db--acme.localhost'), null);
    assert.equal(new AppAuth(randomBytes(32), db).readCookie(value, 'web--acme.localhost'), null);
    const [, session, expires, signature] = value.split('.');
    const forged = [randomUUID(), session, expires, signature].join('.');
    assert.equal(auth.readCookie(forged, 'web--acme.localhost'), null);
    assert.equal(auth.readCookie('garbage', 'web--acme.localhost'), null);
  });

  test('each machine host has its own cookie name', () => {
    assert.match(appCookieName('web--acme.localhost'), /^snapvm_app_[0-9a-f]{16}$/);
    assert.notEqual(appCookieName('web--acme.localhost'), appCookieName('db--acme.localhost'));
  });
});
