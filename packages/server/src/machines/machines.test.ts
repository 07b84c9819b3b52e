import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MachineState } from '@snapvm/protocol';
import { applyObservedState, type MachineStateRef } from '../lifecycle/transitions.js';
import { startTestServer, type TestServer } from '../test-support/test-server.js';

let server: TestServer;
type Client = Awaited<ReturnType<TestServer['signUp']>>;

async function team(slug: string) {
  const owner = await server.signUp('owner');
  assert.equal((await owner.post('/api/v1/orgs', { slug, name: slug })).status, 201);
  const invite = async (role: string) => {
    const user = await server.signUp(role);
    const inv = await owner.post(`/api/v1/orgs/${slug}/invitations`, {
      email: user.user.email,
      role,
    });
    assert.equal((await user.post(`/api/v1/invitations/${inv.body.token}/accept`)).status, 200);
    return user;
  };
  return { owner, admin: await invite('admin'), member: await invite('member') };
}

/** What the reconciler will do: move the observed state through the state table. */
async function observe(slug: string, machine: string, ...path: MachineState[]) {
  await server.db.asSystem(async (tx) => {
    const [row] = await tx.query<MachineStateRef>(
      `SELECT m.id, m.org_id, m.desired_state, m.observed_state FROM machines m
         JOIN orgs o ON o.id = m.org_id
        WHERE o.slug = $1 AND m.name = $2 AND m.observed_state <> 'destroyed' FOR UPDATE`,
      [slug, machine],
    );
    assert.ok(row);
    let ref = row;
    for (const to of path)
      ref = await applyObservedState(tx, ref, to, { actorId: null, reason: 'test reconciler' });
  });
}

describe('machine records', () => {
  before(async () => {
    server = await startTestServer({ env: { SNAPVM_APPS_DOMAIN: 'apps.test' } });
  });
  after(() => server?.close());

  test('create returns the machine with the fields API.md names', async () => {
    const { owner } = await team('m-create');
    const res = await owner.post('/api/v1/orgs/m-create/machines', {
      name: 'web',
      size: 'medium',
      region: 'eu-1',
    });
    assert.equal(res.status, 201, res.text);
    const m = res.body;
    for (const field of [
      'id',
      'name',
      'state',
      'size',
      'region',
      'runtime',
      'owner',
      'urls',
      'createdAt',
    ])
      assert.ok(field in m, field);
    assert.equal(m.name, 'web');
    assert.equal(m.state, 'creating');
    assert.equal(m.desiredState, 'started');
    assert.equal(m.runtime, 'local');
    assert.deepEqual(m.limits, { cpu: 2, memoryMiB: 4096, diskGiB: 20, pids: 2048 });
    assert.equal(m.owner.id, owner.user.id);
    const port = new URL(server.config.publicUrl).port;
    assert.equal(m.urls.app, `http://web--m-create.apps.test:${port}/`);
    const got = await owner.get('/api/v1/orgs/m-create/machines/web');
    assert.deepEqual(got.body, m);
    const dup = await owner.post('/api/v1/orgs/m-create/machines', { name: 'web' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'name_taken');
  });

  test('a member sees and operates only their own machines; admins see all', async () => {
    const { owner, admin, member } = await team('m-vis');
    await owner.post('/api/v1/orgs/m-vis/machines', { name: 'owners' });
    await member.post('/api/v1/orgs/m-vis/machines', { name: 'mine' });
    const names = async (c: Client) =>
      (await c.get('/api/v1/orgs/m-vis/machines')).body.items.map((m: { name: string }) => m.name);
    assert.deepEqual(await names(member), ['mine']);
    assert.deepEqual(await names(admin), ['owners', 'mine']);
    assert.equal((await member.get('/api/v1/orgs/m-vis/machines/owners')).status, 404);
    assert.equal((await member.post('/api/v1/orgs/m-vis/machines/owners/stop')).status, 404);
    assert.equal((await member.post('/api/v1/orgs/m-vis/machines/mine/stop')).status, 202);
    assert.equal((await admin.post('/api/v1/orgs/m-vis/machines/mine/start')).status, 202);
    const outsider = await server.signUp('outsider');
    assert.equal((await outsider.get('/api/v1/orgs/m-vis/machines')).status, 404);
  });

  test('the list is paginated with a cursor and no item repeats', async () => {
    const { owner } = await team('m-page');
    for (let i = 0; i < 7; i++)
      assert.equal(
        (await owner.post('/api/v1/orgs/m-page/machines', { name: `m${i}` })).status,
        201,
      );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await owner.get(`/api/v1/orgs/m-page/machines?limit=3${query}`);
      assert.equal(page.status, 200);
      seen.push(...page.body.items.map((m: { name: string }) => m.name));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });

  test('patch changes the http port, URL access and idle settings', async () => {
    const { owner } = await team('m-patch');
    await owner.post('/api/v1/orgs/m-patch/machines', { name: 'api' });
    const res = await owner.patch('/api/v1/orgs/m-patch/machines/api', {
      httpPort: 3000,
      urlAccess: 'org',
      idle: { suspendAfterSeconds: 600, stopAfterSeconds: null },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.httpPort, 3000);
    assert.equal(res.body.urlAccess, 'org');
    assert.deepEqual(res.body.idle, {
      suspendAfterSeconds: 600,
      stopAfterSeconds: null,
      source: { suspendAfterSeconds: 'machine', stopAfterSeconds: 'machine' },
    });
    const partial = await owner.patch('/api/v1/orgs/m-patch/machines/api', { httpPort: 8081 });
    assert.deepEqual(partial.body.idle, res.body.idle, 'unspecified settings stay');
  });

  test('start, stop and suspend set the desired state; bad transitions are 409 naming the state', async () => {
    const { owner } = await team('m-life');
    await owner.post('/api/v1/orgs/m-life/machines', { name: 'box' });
    const early = await owner.post('/api/v1/orgs/m-life/machines/box/suspend');
    assert.equal(early.status, 409);
    assert.match(early.body.error.message, /creating/);
    await observe('m-life', 'box', 'started');
    const suspend = await owner.post('/api/v1/orgs/m-life/machines/box/suspend');
    assert.equal(suspend.status, 202);
    assert.equal(suspend.body.desiredState, 'suspended');
    assert.equal(suspend.body.state, 'started', 'observed state is the reconciler’s to change');
    const stop = await owner.post('/api/v1/orgs/m-life/machines/box/stop');
    assert.equal(stop.body.desiredState, 'stopped');
    await observe('m-life', 'box', 'stopping', 'stopped');
    const suspendStopped = await owner.post('/api/v1/orgs/m-life/machines/box/suspend');
    assert.equal(suspendStopped.status, 409);
    assert.match(suspendStopped.body.error.message, /stopped/);
    assert.equal((await owner.post('/api/v1/orgs/m-life/machines/box/start')).status, 202);
  });

  test('delete goes to destroying and every transition is an event', async () => {
    const { owner } = await team('m-del');
    await owner.post('/api/v1/orgs/m-del/machines', { name: 'gone' });
    await observe('m-del', 'gone', 'started');
    const del = await owner.delete('/api/v1/orgs/m-del/machines/gone');
    assert.equal(del.status, 202);
    assert.equal(del.body.state, 'destroying');
    assert.equal(del.body.desiredState, 'destroyed');
    const events = await owner.get('/api/v1/orgs/m-del/machines/gone/events');
    assert.deepEqual(
      events.body.items.map((e: { kind: string; from: string | null; to: string }) => [
        e.kind,
        e.from,
        e.to,
      ]),
      [
        ['observed', null, 'creating'],
        ['desired', null, 'started'],
        ['observed', 'creating', 'started'],
        ['desired', 'started', 'destroyed'],
        ['observed', 'started', 'destroying'],
      ],
    );
    assert.equal(events.body.items[2].actor, null, 'system transitions have no actor');
    assert.equal(events.body.items[3].actor.id, owner.user.id);
    assert.equal((await owner.post('/api/v1/orgs/m-del/machines/gone/start')).status, 409);
  });

  test('creating past the plan limit is a 422 that says so, counting every member', async () => {
    const { owner, member } = await team('m-plan');
    await server.db.asSystem((tx) =>
      tx.query(`UPDATE orgs SET plan_id = 'free' WHERE slug = 'm-plan'`),
    );
    for (const name of ['a1', 'a2', 'a3'])
      assert.equal((await owner.post('/api/v1/orgs/m-plan/machines', { name })).status, 201);
    const over = await member.post('/api/v1/orgs/m-plan/machines', { name: 'a4' });
    assert.equal(over.status, 422);
    assert.equal(over.body.error.code, 'plan_limit_reached');
    assert.match(over.body.error.message, /Free plan allows 3 machines/);
    await owner.delete('/api/v1/orgs/m-plan/machines/a1');
    assert.equal(
      (await member.post('/api/v1/orgs/m-plan/machines', { name: 'a4' })).status,
      422,
      'a machine still being destroyed counts',
    );
  });

  test('concurrent creations cannot overshoot the plan', async () => {
    const { owner } = await team('m-race');
    await server.db.asSystem((tx) =>
      tx.query(`UPDATE orgs SET plan_id = 'free' WHERE slug = 'm-race'`),
    );
    const results = await Promise.all(
      ['r1', 'r2', 'r3', 'r4', 'r5'].map((name) =>
        owner.post('/api/v1/orgs/m-race/machines', { name }),
      ),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 201, 201, 422, 422]);
  });

  test('the audit log records who did what from where; members cannot read it', async () => {
    const { owner, member } = await team('m-audit');
    await member.post('/api/v1/orgs/m-audit/machines', { name: 'logged' });
    await member.post('/api/v1/orgs/m-audit/machines/logged/stop');
    const audit = await owner.get('/api/v1/orgs/m-audit/audit');
    assert.equal(audit.status, 200);
    const [stop, create] = audit.body.items;
    assert.equal(stop.action, 'machine.stop');
    assert.equal(create.action, 'machine.create');
    assert.equal(create.actor.id, member.user.id);
    assert.equal(create.ip, '127.0.0.1');
    assert.equal(create.target.type, 'machine');
    assert.ok(audit.body.items.some((e: { action: string }) => e.action === 'invitation.accept'));
    assert.equal((await member.get('/api/v1/orgs/m-audit/audit')).status, 403);
  });
});
