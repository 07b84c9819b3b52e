import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
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
  const identity = { userId: crypto.randomUUID(), sessionId: crypto.randomUUID() };

  test('a ticket works once, only on the host it was issued for', () => {
    const auth = new AppAuth(randomBytes(32));
    const ticket = auth.issueTicket(identity, 'web--acme.localhost');
    assert.equal(auth.redeemTicket(ticket, 'other--acme.localhost'), null);
    const again = auth.issueTicket(identity, 'web--acme.localhost');
    assert.deepEqual(auth.redeemTicket(again, 'web--acme.localhost'), identity);
    assert.equal(auth.redeemTicket(again, 'web--acme.localhost'), null, 'single use');
    assert.equal(auth.redeemTicket(ticket, 'web--acme.localhost'), null, 'burnt by the wrong host');
    assert.equal(auth.redeemTicket('made-up', 'web--acme.localhost'), null);
  });

  test('a cookie is bound to its host and to the signing key, and cannot be edited', () => {
    const auth = new AppAuth(randomBytes(32));
    const value = auth.cookieValue(identity, 'web--acme.localhost');
    assert.deepEqual(auth.readCookie(value, 'web--acme.localhost'), identity);
    assert.equal(auth.readCookie(value, 'db--acme.localhost'), null);
    assert.equal(new AppAuth(randomBytes(32)).readCookie(value, 'web--acme.localhost'), null);
    const [, session, expires, signature] = value.split('.');
    const forged = [crypto.randomUUID(), session, expires, signature].join('.');
    assert.equal(auth.readCookie(forged, 'web--acme.localhost'), null);
    assert.equal(auth.readCookie('garbage', 'web--acme.localhost'), null);
  });

  test('each machine host has its own cookie name', () => {
    assert.match(appCookieName('web--acme.localhost'), /^snapvm_app_[0-9a-f]{16}$/);
    assert.notEqual(appCookieName('web--acme.localhost'), appCookieName('db--acme.localhost'));
  });
});
