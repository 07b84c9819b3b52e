import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { readMigrations } from '../db/migrate.js';
import { startTestServer, type TestServer } from '../test-support/test-server.js';

let server: TestServer;

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

const fromOrg = { suspendAfterSeconds: 'org', stopAfterSeconds: 'org' };

describe('org idle defaults and machine overrides', () => {
  before(async () => {
    // Not the built-in 300/3600, to see that new orgs take the server's configured defaults.
    server = await startTestServer({
      env: { SNAPVM_IDLE_SUSPEND_SECONDS: '120', SNAPVM_IDLE_STOP_SECONDS: '0' },
    });
  });
  after(() => server?.close());

  test("a new org starts with the server's defaults and its machines inherit them", async () => {
    const { owner, member } = await team('i-new');
    const org = await member.get('/api/v1/orgs/i-new');
    assert.equal(org.status, 200);
    assert.deepEqual(org.body.idle, { suspendAfterSeconds: 120, stopAfterSeconds: null });
    const listed = (await owner.get('/api/v1/orgs')).body.items[0];
    assert.deepEqual(listed.idle, org.body.idle);
    const created = await owner.post('/api/v1/orgs/i-new/machines', { name: 'web' });
    assert.deepEqual(created.body.idle, {
      suspendAfterSeconds: 120,
      stopAfterSeconds: null,
      source: fromOrg,
    });
  });

  test('admins and owners change the defaults, members cannot, and each change is audited', async () => {
    const { owner, admin, member } = await team('i-auth');
    const refused = await member.patch('/api/v1/orgs/i-auth', {
      idle: { suspendAfterSeconds: 600 },
    });
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.error.message, /admins and owners/);
    const byAdmin = await admin.patch('/api/v1/orgs/i-auth', {
      idle: { suspendAfterSeconds: 600, stopAfterSeconds: 7200 },
    });
    assert.equal(byAdmin.status, 200, byAdmin.text);
    assert.deepEqual(byAdmin.body.idle, { suspendAfterSeconds: 600, stopAfterSeconds: 7200 });
    const byOwner = await owner.patch('/api/v1/orgs/i-auth', { idle: { stopAfterSeconds: null } });
    assert.deepEqual(
      byOwner.body.idle,
      { suspendAfterSeconds: 600, stopAfterSeconds: null },
      'a tier left out stays as it was',
    );
    assert.equal(byOwner.body.name, 'i-auth', 'the name is untouched');
    const audit = await owner.get('/api/v1/orgs/i-auth/audit');
    const changes = audit.body.items.filter(
      (e: { action: string }) => e.action === 'org.idle_defaults',
    );
    assert.equal(changes.length, 2, 'the refused change is not recorded');
    assert.deepEqual(changes[0].details, {
      from: { suspendAfterSeconds: 600, stopAfterSeconds: 7200 },
      to: { suspendAfterSeconds: 600, stopAfterSeconds: null },
    });
    assert.equal(changes[1].actor.id, admin.user.id);
  });

  test('bad idle values name the field, for the org and for the machine', async () => {
    const { owner } = await team('i-bad');
    await owner.post('/api/v1/orgs/i-bad/machines', { name: 'web' });
    const cases: [string, unknown, RegExp][] = [
      [
        '/api/v1/orgs/i-bad',
        { idle: { suspendAfterSeconds: 59 } },
        /body\.idle\.suspendAfterSeconds/,
      ],
      [
        '/api/v1/orgs/i-bad',
        { idle: { stopAfterSeconds: 'soon' } },
        /body\.idle\.stopAfterSeconds/,
      ],
      [
        '/api/v1/orgs/i-bad',
        { idle: { suspendAfterSeconds: 'inherit' } },
        /body\.idle\.suspendAfterSeconds/,
      ],
      ['/api/v1/orgs/i-bad', { idle: { sleepAfterSeconds: 60 } }, /body\.idle/],
      ['/api/v1/orgs/i-bad', {}, /body: give name or idle/],
      [
        '/api/v1/orgs/i-bad/machines/web',
        { idle: { stopAfterSeconds: 1.5 } },
        /body\.idle\.stopAfterSeconds: .*"inherit"/,
      ],
      [
        '/api/v1/orgs/i-bad/machines/web',
        { idle: { stopAfterSeconds: 40 * 24 * 3600 } },
        /body\.idle\.stopAfterSeconds/,
      ],
      ['/api/v1/orgs/i-bad/machines/web', { idle: { suspendAfter: 60 } }, /body\.idle/],
    ];
    for (const [path, body, field] of cases) {
      const res = await owner.patch(path, body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.error.message, field, JSON.stringify(body));
    }
    const org = await owner.get('/api/v1/orgs/i-bad');
    assert.deepEqual(org.body.idle, { suspendAfterSeconds: 120, stopAfterSeconds: null });
  });

  test('a machine that inherits follows the org; an override does not; reset inherits again', async () => {
    const { owner, member } = await team('i-inherit');
    await member.post('/api/v1/orgs/i-inherit/machines', { name: 'follows' });
    await member.post('/api/v1/orgs/i-inherit/machines', { name: 'own' });
    const override = await member.patch('/api/v1/orgs/i-inherit/machines/own', {
      idle: { suspendAfterSeconds: 900 },
    });
    assert.equal(override.status, 200, override.text);
    assert.deepEqual(override.body.idle, {
      suspendAfterSeconds: 900,
      stopAfterSeconds: null,
      source: { suspendAfterSeconds: 'machine', stopAfterSeconds: 'org' },
    });

    await owner.patch('/api/v1/orgs/i-inherit', {
      idle: { suspendAfterSeconds: 300, stopAfterSeconds: 3600 },
    });
    const idleOf = async (name: string) =>
      (await member.get(`/api/v1/orgs/i-inherit/machines/${name}`)).body.idle;
    assert.deepEqual(await idleOf('follows'), {
      suspendAfterSeconds: 300,
      stopAfterSeconds: 3600,
      source: fromOrg,
    });
    assert.deepEqual(await idleOf('own'), {
      suspendAfterSeconds: 900,
      stopAfterSeconds: 3600,
      source: { suspendAfterSeconds: 'machine', stopAfterSeconds: 'org' },
    });
    const list = (await member.get('/api/v1/orgs/i-inherit/machines')).body.items;
    assert.deepEqual(
      list.map((m: { name: string; idle: { suspendAfterSeconds: number } }) => [
        m.name,
        m.idle.suspendAfterSeconds,
      ]),
      [
        ['follows', 300],
        ['own', 900],
      ],
      'the list shows the same effective values',
    );

    const off = await member.patch('/api/v1/orgs/i-inherit/machines/follows', {
      idle: { stopAfterSeconds: null },
    });
    assert.deepEqual(
      off.body.idle,
      {
        suspendAfterSeconds: 300,
        stopAfterSeconds: null,
        source: { suspendAfterSeconds: 'org', stopAfterSeconds: 'machine' },
      },
      'null overrides the org with "never"',
    );

    const reset = await member.patch('/api/v1/orgs/i-inherit/machines/own', {
      idle: { suspendAfterSeconds: 'inherit', stopAfterSeconds: 'inherit' },
      httpPort: 3000,
    });
    assert.equal(reset.status, 200, reset.text);
    assert.equal(reset.body.httpPort, 3000);
    assert.deepEqual(reset.body.idle, {
      suspendAfterSeconds: 300,
      stopAfterSeconds: 3600,
      source: fromOrg,
    });
    await owner.patch('/api/v1/orgs/i-inherit', { idle: { suspendAfterSeconds: null } });
    assert.equal((await idleOf('own')).suspendAfterSeconds, null, 'the org can turn a tier off');
  });
});

describe('migration 0005', () => {
  test('existing machines keep their explicit idle values; existing orgs get 5 min / 1 h', async () => {
    const db = await PGlite.create();
    try {
      const migrations = await readMigrations();
      const index = migrations.findIndex((m) => m.name === '0005-org-idle-defaults');
      assert.ok(index > 0);
      for (const m of migrations.slice(0, index)) await db.exec(m.sql);
      const org = await db.query<{ id: string }>(
        `INSERT INTO orgs (slug, name, plan_id) VALUES ('old', 'Old', 'free') RETURNING id`,
      );
      const orgId = org.rows[0]?.id;
      await db.query(
        `INSERT INTO machines (org_id, name, size, region, runtime, desired_state,
                               observed_state, idle_suspend_seconds, idle_stop_seconds)
         VALUES ($1, 'kept', 'small', 'local', 'local', 'started', 'started', 900, NULL)`,
        [orgId],
      );
      await db.exec(migrations[index]?.sql ?? '');
      const orgs = await db.query('SELECT idle_suspend_seconds, idle_stop_seconds FROM orgs');
      assert.deepEqual(orgs.rows, [{ idle_suspend_seconds: 300, idle_stop_seconds: 3600 }]);
      const machines = await db.query(
        `SELECT idle_suspend_seconds, idle_stop_seconds, idle_suspend_inherit, idle_stop_inherit
           FROM machines`,
      );
      assert.deepEqual(machines.rows, [
        {
          idle_suspend_seconds: 900,
          idle_stop_seconds: null,
          idle_suspend_inherit: false,
          idle_stop_inherit: false,
        },
      ]);
      await assert.rejects(
        db.query(`UPDATE machines SET idle_suspend_inherit = true`),
        /machines_idle_suspend_inherits/,
        'an inheriting machine cannot also hold its own period',
      );
    } finally {
      await db.close();
    }
  });
});
