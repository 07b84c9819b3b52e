import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchPath, pathTo, safeNextPath } from './router.js';

test('a route pattern yields its decoded params', () => {
  assert.deepEqual(matchPath('/orgs/:org/machines/:machine', '/orgs/acme/machines/web-1'), {
    org: 'acme',
    machine: 'web-1',
  });
  assert.deepEqual(matchPath('/invite/:token', '/invite/a%2Fb'), { token: 'a/b' });
});

test('a route does not match a path of another shape', () => {
  assert.equal(matchPath('/orgs/:org/machines', '/orgs/acme/members'), null);
  assert.equal(matchPath('/orgs/:org', '/orgs/acme/machines'), null);
  assert.equal(matchPath('/orgs/:org', '/orgs/%E0%A4%A'), null);
});

test('paths are built with each part encoded', () => {
  assert.equal(pathTo('orgs', 'a b', 'machines'), '/orgs/a%20b/machines');
});

test('the post-sign-in redirect never leaves the site', () => {
  assert.equal(safeNextPath('/orgs/acme'), '/orgs/acme');
  assert.equal(safeNextPath('//evil.example/'), '/');
  assert.equal(safeNextPath('https://evil.example/'), '/');
  assert.equal(safeNextPath('/\\evil.example'), '/');
  assert.equal(safeNextPath(null), '/');
});
