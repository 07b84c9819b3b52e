import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  openTestDatabase,
  prepareTestDatabase,
  type TestDatabaseHandle,
} from '../test-support/test-server.js';
import type { Database, Tx } from './database.js';
import { sqlState } from './values.js';

// Tables that hold no tenant data: everything else must have RLS enabled and forced.
const GLOBAL_TABLES = ['plans', 'schema_migrations'];

let handle: TestDatabaseHandle;
let db: Database;
const ids = {} as Record<
  'ownerA' | 'memberA' | 'ownerB' | 'orgA' | 'orgB' | 'ownerMachineA' | 'memberMachineA',
  string
>;

async function orgScopedTables(tx: Tx): Promise<Array<{ table: string; key: string }>> {
  const rows = await tx.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns
      WHERE table_schema = 'public' AND column_name = 'org_id' ORDER BY table_name`,
  );
  return [
    { table: 'orgs', key: 'id' },
    ...rows.map((r) => ({ table: r.table_name, key: 'org_id' })),
  ];
}

async function seed(): Promise<void> {
  await db.asSystem(async (tx) => {
    const user = async (name: string) =>
      (
        await tx.query<{ id: string }>(
          `INSERT INTO users (email, name, password_hash) VALUES ($1, $1, 'x') RETURNING id`,
          [`${name}@example.com`],
        )
      )[0]?.id ?? '';
    ids.ownerA = await user('owner-a');
    ids.memberA = await user('member-a');
    ids.ownerB = await user('owner-b');
    for (const [key, slug, owner] of [
      ['orgA', 'org-a', ids.ownerA],
      ['orgB', 'org-b', ids.ownerB],
    ] as const) {
      const [org] = await tx.query<{ id: string }>(
        `INSERT INTO orgs (slug, name, plan_id) VALUES ($1, $1, 'team') RETURNING id`,
        [slug],
      );
      ids[key] = org?.id ?? '';
      await tx.query(`INSERT INTO memberships VALUES ($1, $2, 'owner')`, [ids[key], owner]);
    }
    await tx.query(`INSERT INTO memberships VALUES ($1, $2, 'member')`, [ids.orgA, ids.memberA]);
    const machine = async (org: string, owner: string, name: string) => {
      const [row] = await tx.query<{ id: string }>(
        `INSERT INTO machines (org_id, owner_id, name, size, region, runtime, desired_state,
           observed_state) VALUES ($1, $2, $3, 'small', 'local', 'local', 'started', 'creating')
         RETURNING id`,
        [org, owner, name],
      );
      const id = row?.id ?? '';
      await tx.query(
        `INSERT INTO machine_events (org_id, machine_id, kind, to_state, reason)
         VALUES ($1, $2, 'observed', 'creating', 'seed')`,
        [org, id],
      );
      await tx.query(
        `INSERT INTO service_definitions (org_id, machine_id, name, definition)
         VALUES ($1, $2, 'web', '{"command": "true"}')`,
        [org, id],
      );
      return id;
    };
    ids.ownerMachineA = await machine(ids.orgA, ids.ownerA, 'owners');
    ids.memberMachineA = await machine(ids.orgA, ids.memberA, 'members');
    await machine(ids.orgB, ids.ownerB, 'owners');
    for (const [org, actor] of [
      [ids.orgA, ids.ownerA],
      [ids.orgB, ids.ownerB],
    ]) {
      await tx.query(
        `INSERT INTO invitations (org_id, email, role, token_hash, expires_at)
         VALUES ($1, 'x@example.com', 'member', $2, now() + interval '1 day')`,
        [org, `hash-${org}`],
      );
      await tx.query(
        `INSERT INTO audit_log (org_id, actor_id, action, target_type) VALUES ($1, $2, 'seed', 'org')`,
        [org, actor],
      );
    }
  });
}

/** Runs one statement as `user` inside org-a; returns its rows or the SQLSTATE it failed with. */
async function asOrgA(
  user: string,
  sql: string,
  params: unknown[] = [],
): Promise<{ rows: Record<string, unknown>[]; error?: string }> {
  try {
    return { rows: await db.asMember(user, 'org-a', (tx) => tx.query(sql, params)) };
  } catch (err) {
    const state = sqlState(err);
    if (!state) throw err;
    return { rows: [], error: state };
  }
}

describe('row-level security', () => {
  before(async () => {
    handle = await prepareTestDatabase();
    db = await openTestDatabase(handle);
    await seed();
  });
  after(async () => {
    await db?.close();
    await handle?.cleanup();
  });

  test('every table except the global ones has RLS enabled and forced, with policies', async () => {
    const tables = await db.asSystem((tx) =>
      tx.query<{ relname: string; enabled: boolean; forced: boolean; policies: number }>(
        `SELECT c.relname, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
                (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
      ),
    );
    assert.ok(tables.length >= 10);
    for (const t of tables) {
      if (GLOBAL_TABLES.includes(t.relname)) continue;
      assert.ok(t.enabled && t.forced, `${t.relname}: RLS must be enabled and forced`);
      assert.ok(t.policies > 0, `${t.relname}: has no policies`);
    }
    const scoped = await db.asSystem(orgScopedTables);
    for (const name of ['machines', 'memberships', 'audit_log', 'service_definitions'])
      assert.ok(
        scoped.some((s) => s.table === name),
        `${name} is org-scoped`,
      );
  });

  test('requests run as a role that is neither superuser nor BYPASSRLS', async () => {
    const [role] = await db.asUser(ids.ownerA, (tx) =>
      tx.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
        'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
      ),
    );
    assert.deepEqual(role, { rolsuper: false, rolbypassrls: false });
  });

  test("inside org A, an unfiltered SELECT * on every org-scoped table shows only org A's rows", async () => {
    const tables = await db.asSystem(orgScopedTables);
    for (const { table, key } of tables) {
      const { rows } = await asOrgA(ids.ownerA, `SELECT * FROM ${table}`);
      assert.ok(rows.length > 0, `${table}: the seed should give org A rows`);
      for (const row of rows) assert.equal(row[key], ids.orgA, `${table} leaked another org's row`);
    }
  });

  test('inside org A, inserting or updating a row of another org fails on every table', async () => {
    const tables = await db.asSystem(orgScopedTables);
    for (const { table, key } of tables) {
      const columns = await db.asSystem((tx) =>
        tx.query<{ column_name: string; is_identity: string; column_default: string | null }>(
          `SELECT column_name, is_identity, column_default FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = $1`,
          [table],
        ),
      );
      const insertable = columns.filter((c) => c.is_identity !== 'YES');
      const list = insertable.map((c) => c.column_name).join(', ');
      const values = insertable
        .map((c) =>
          c.column_name === key
            ? '$1::uuid'
            : c.column_name === 'id' && c.column_default?.includes('gen_random_uuid')
              ? 'gen_random_uuid()'
              : c.column_name,
        )
        .join(', ');
      const insert = await asOrgA(
        ids.ownerA,
        `INSERT INTO ${table} (${list}) SELECT ${values} FROM ${table} LIMIT 1 RETURNING 1`,
        [ids.orgB],
      );
      assert.equal(insert.error, '42501', `${table}: a cross-org insert must be refused`);
      const move = await asOrgA(
        ids.ownerA,
        `UPDATE ${table} SET ${key} = $1 WHERE ${key} = $2 RETURNING 1`,
        [ids.orgB, ids.orgA],
      );
      assert.equal(move.error, '42501', `${table}: moving a row to another org must be refused`);
      for (const sql of [
        `UPDATE ${table} SET ${key} = ${key} WHERE ${key} = $1 RETURNING 1`,
        `DELETE FROM ${table} WHERE ${key} = $1 RETURNING 1`,
      ]) {
        const other = await asOrgA(ids.ownerA, sql, [ids.orgB]);
        assert.equal(other.rows.length, 0, `${table}: touched another org's rows: ${sql}`);
      }
    }
    const [stillThere] = await db.asSystem((tx) =>
      tx.query<{ n: number }>('SELECT count(*)::int AS n FROM machines WHERE org_id = $1', [
        ids.orgB,
      ]),
    );
    assert.equal(stillThere?.n, 1);
  });

  test('a member sees only their own machines and their events, even with no filter', async () => {
    const machines = await asOrgA(ids.memberA, 'SELECT id FROM machines');
    assert.deepEqual(
      machines.rows.map((r) => r.id),
      [ids.memberMachineA],
    );
    const events = await asOrgA(ids.memberA, 'SELECT machine_id FROM machine_events');
    assert.deepEqual(
      events.rows.map((r) => r.machine_id),
      [ids.memberMachineA],
    );
    const audit = await asOrgA(ids.memberA, 'SELECT * FROM audit_log');
    assert.equal(audit.rows.length, 0, 'members do not read the audit log');
    const update = await asOrgA(
      ids.memberA,
      `UPDATE machines SET http_port = 9000 WHERE id = $1 RETURNING 1`,
      [ids.ownerMachineA],
    );
    assert.equal(update.rows.length, 0, "a member cannot change another member's machine");
  });

  test("people outside the org, and everyone's sessions and tokens, stay invisible", async () => {
    await db.asSystem((tx) =>
      tx.query(
        `INSERT INTO auth_sessions (user_id, token_hash, expires_at)
         SELECT id, 'session-' || id, now() + interval '1 day' FROM users`,
      ),
    );
    const users = await asOrgA(ids.ownerA, 'SELECT id FROM users');
    assert.deepEqual(
      users.rows.map((r) => r.id).sort(),
      [ids.ownerA, ids.memberA].sort(),
      'org A sees its own members only',
    );
    const sessions = await asOrgA(ids.ownerA, 'SELECT user_id FROM auth_sessions');
    assert.deepEqual(
      sessions.rows.map((r) => r.user_id),
      [ids.ownerA],
      'even an owner sees only their own sessions',
    );
    const outside = await db.asUser(ids.ownerB, (tx) =>
      tx.query<{ id: string }>('SELECT id FROM users'),
    );
    assert.deepEqual(
      outside.map((r) => r.id),
      [ids.ownerB],
    );
  });

  test('a user who is not a member gets no org context at all', async () => {
    await assert.rejects(
      db.asMember(ids.ownerB, 'org-a', async () => undefined),
      { statusCode: 404 },
    );
  });

  test('with no acting user, no tenant table shows a single row', async () => {
    const tables = await db.asSystem(orgScopedTables);
    for (const { table } of [...tables, { table: 'users' }, { table: 'api_tokens' }]) {
      const rows = await db.asUser('00000000-0000-0000-0000-000000000000', (tx) =>
        tx.query(`SELECT * FROM ${table}`),
      );
      assert.equal(rows.length, 0, table);
    }
  });
});
