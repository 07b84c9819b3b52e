import type {
  CreateMachineBody,
  DesiredState,
  Machine,
  MachineEvent,
  PageQuery,
  PatchMachineBody,
} from '@snapvm/protocol';
import { decodeCursor, encodeCursor } from '../api/cursor.js';
import { recordAudit } from '../audit/audit-log.js';
import type { Actor } from '../auth/actor.js';
import { presentUser } from '../auth/user-presenter.js';
import type { OrgContext, Tx } from '../db/database.js';
import { iso, sqlState } from '../db/values.js';
import { ConflictError, NotFoundError, UnprocessableError, ValidationError } from '../errors.js';
import {
  applyObservedState,
  recordCreation,
  requestDesiredState,
} from '../lifecycle/transitions.js';
import { idleOverrideParams } from './idle-settings.js';
import {
  MACHINE_COLUMNS,
  type MachineRow,
  presentMachine,
  type UrlSettings,
} from './machine-presenter.js';

export interface MachineSettings extends UrlSettings {
  defaultRegion: string;
}

const FROM = 'machines m JOIN orgs o ON o.id = m.org_id LEFT JOIN users u ON u.id = m.owner_id';

/**
 * A machine the caller may see, by name, locked for this transaction when `forUpdate`.
 * Invisible and missing machines are the same 404: members can't probe others' machines.
 */
async function findMachine(
  tx: Tx,
  org: OrgContext,
  name: string,
  forUpdate = false,
): Promise<MachineRow> {
  const [row] = await tx.query<MachineRow>(
    `SELECT ${MACHINE_COLUMNS} FROM ${FROM}
      WHERE m.org_id = $1 AND m.name = $2 AND m.observed_state <> 'destroyed'
      ${forUpdate ? 'FOR UPDATE OF m' : ''}`,
    [org.orgId, name],
  );
  if (!row) throw new NotFoundError(`Machine "${name}"`);
  return row;
}

async function reload(tx: Tx, org: OrgContext, id: string, urls: UrlSettings): Promise<Machine> {
  const [row] = await tx.query<MachineRow>(
    `SELECT ${MACHINE_COLUMNS} FROM ${FROM} WHERE m.id = $1`,
    [id],
  );
  if (!row) throw new NotFoundError('Machine');
  return presentMachine(row, org.slug, urls);
}

export async function createMachine(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  body: CreateMachineBody,
  settings: MachineSettings,
  ip: string,
): Promise<Machine> {
  // Serializes creations per org so two requests can't both pass the plan check.
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`machines:${org.orgId}`]);
  const [plan] = await tx.query<{ max: number; name: string }>(
    'SELECT max_machines AS max, name FROM plans WHERE id = $1',
    [org.planId],
  );
  // Counts the whole org, not just what RLS shows this caller (members see only their own).
  const [count] = await tx.query<{ n: number }>('SELECT snapvm_org_machine_count() AS n');
  const used = count?.n ?? 0;
  if (plan && used >= plan.max)
    throw new UnprocessableError(
      `The ${plan.name} plan allows ${plan.max} machines and this org has ${used}; ` +
        'destroy one or move to a bigger plan.',
      'plan_limit_reached',
    );
  let row: MachineRow | undefined;
  try {
    // Idle periods are not set here: a new machine inherits its org's (the column defaults).
    [row] = await tx.query<MachineRow>(
      `INSERT INTO machines (org_id, owner_id, name, size, region, runtime, desired_state,
                             observed_state)
       VALUES ($1, $2, $3, $4, $5, $6, 'started', 'creating')
       RETURNING id, org_id, desired_state, observed_state`,
      [
        org.orgId,
        actor.userId,
        body.name,
        body.size,
        body.region ?? settings.defaultRegion,
        body.runtime,
      ],
    );
  } catch (err) {
    if (sqlState(err) === '23505')
      throw new ConflictError(
        `A machine named "${body.name}" already exists in this org.`,
        'name_taken',
      );
    throw err;
  }
  if (!row) throw new Error('machine insert returned no row');
  await recordCreation(tx, row, { actorId: actor.userId, reason: 'created' });
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'machine.create',
    targetType: 'machine',
    targetId: row.id,
    ip,
    details: { name: body.name, size: body.size, runtime: body.runtime },
  });
  return reload(tx, org, row.id, settings);
}

export async function listMachines(
  tx: Tx,
  org: OrgContext,
  page: PageQuery,
  urls: UrlSettings,
): Promise<{ items: Machine[]; nextCursor: string | null }> {
  let after: [string, string] | null = null;
  if (page.cursor) {
    const [at, id] = decodeCursor(page.cursor, 2);
    if (!at || !id || Number.isNaN(Date.parse(at)) || !/^[0-9a-f-]{36}$/.test(id))
      throw new ValidationError('querystring.cursor', 'is not a cursor returned by this API');
    after = [at, id];
  }
  // RLS already limits members to their own machines; saying so here lets the planner use
  // the owner index instead of filtering the whole org.
  const ownOnly = org.role === 'member' ? 'AND owner_id = snapvm_user_id()' : '';
  const afterCursor = after ? 'AND (created_at, id) > ($2::timestamptz, $3::uuid)' : '';
  // The limit is part of the text, not a parameter: with LIMIT $n PostgreSQL prices a generic
  // plan for 10% of the org and so re-plans the prepared statement on every request.
  const limit = page.limit + 1;
  if (!Number.isSafeInteger(limit))
    throw new ValidationError('querystring.limit', 'is not an integer');
  // The page is cut first, then joined to its owners: 51 look-ups, not one per machine.
  const rows = await tx.query<MachineRow & { cursor_at: string }>(
    `SELECT ${MACHINE_COLUMNS}, m.created_at::text AS cursor_at
       FROM (SELECT * FROM machines
              WHERE org_id = $1 AND observed_state <> 'destroyed' ${ownOnly} ${afterCursor}
              ORDER BY created_at, id LIMIT ${limit}) m
       JOIN orgs o ON o.id = m.org_id
       LEFT JOIN users u ON u.id = m.owner_id
      ORDER BY m.created_at, m.id`,
    after ? [org.orgId, after[0], after[1]] : [org.orgId],
  );
  const more = rows.length > page.limit;
  const shown = rows.slice(0, page.limit);
  const last = shown.at(-1);
  return {
    items: shown.map((row) => presentMachine(row, org.slug, urls)),
    nextCursor: more && last ? encodeCursor([last.cursor_at, last.id]) : null,
  };
}

export async function getMachine(
  tx: Tx,
  org: OrgContext,
  name: string,
  urls: UrlSettings,
): Promise<Machine> {
  return presentMachine(await findMachine(tx, org, name), org.slug, urls);
}

export async function patchMachine(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  name: string,
  body: PatchMachineBody,
  urls: UrlSettings,
  ip: string,
): Promise<Machine> {
  const machine = await findMachine(tx, org, name, true);
  await tx.query(
    `UPDATE machines SET
       http_port = coalesce($2, http_port),
       url_access = coalesce($3, url_access),
       idle_suspend_seconds = CASE WHEN $4 THEN $5::int ELSE idle_suspend_seconds END,
       idle_suspend_inherit = CASE WHEN $4 THEN $6::boolean ELSE idle_suspend_inherit END,
       idle_stop_seconds = CASE WHEN $7 THEN $8::int ELSE idle_stop_seconds END,
       idle_stop_inherit = CASE WHEN $7 THEN $9::boolean ELSE idle_stop_inherit END,
       updated_at = now()
     WHERE id = $1`,
    [
      machine.id,
      body.httpPort ?? null,
      body.urlAccess ?? null,
      ...idleOverrideParams(body.idle?.suspendAfterSeconds),
      ...idleOverrideParams(body.idle?.stopAfterSeconds),
    ],
  );
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'machine.update',
    targetType: 'machine',
    targetId: machine.id,
    ip,
    details: body,
  });
  return reload(tx, org, machine.id, urls);
}

const actions: Record<Exclude<DesiredState, 'destroyed'>, string> = {
  started: 'machine.start',
  stopped: 'machine.stop',
  suspended: 'machine.suspend',
};

/** start / stop / suspend: records the desired state (202); the reconciler does the rest. */
export async function requestMachineState(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  name: string,
  desired: Exclude<DesiredState, 'destroyed'>,
  urls: UrlSettings,
  ip: string,
): Promise<Machine> {
  const machine = await findMachine(tx, org, name, true);
  const cause = { actorId: actor.userId, reason: 'api' };
  const requested = await requestDesiredState(tx, machine, desired, cause);
  // Asking again is how a user retries a failed machine: the reconciler leaves failed ones
  // alone until then (lifecycle/reconciler-plan.ts).
  if (machine.observed_state === 'failed')
    await applyObservedState(tx, requested, desired === 'stopped' ? 'stopping' : 'starting', cause);
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: actions[desired],
    targetType: 'machine',
    targetId: machine.id,
    ip,
  });
  return reload(tx, org, machine.id, urls);
}

/** Marks the machine for destruction: desired destroyed, observed destroying (202). */
export async function destroyMachine(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  name: string,
  urls: UrlSettings,
  ip: string,
): Promise<Machine> {
  const machine = await findMachine(tx, org, name, true);
  const cause = { actorId: actor.userId, reason: 'api' };
  const requested = await requestDesiredState(tx, machine, 'destroyed', cause);
  await applyObservedState(tx, requested, 'destroying', cause);
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'machine.delete',
    targetType: 'machine',
    targetId: machine.id,
    ip,
  });
  return reload(tx, org, machine.id, urls);
}

interface EventRow {
  id: string | number;
  at: Date;
  kind: 'desired' | 'observed';
  from_state: string | null;
  to_state: string;
  reason: string;
  actor_id: string | null;
  actor_email: string | null;
  actor_name: string | null;
}

/** The machine's lifecycle timeline, oldest first. */
export async function listMachineEvents(
  tx: Tx,
  org: OrgContext,
  name: string,
  page: PageQuery,
): Promise<{ items: MachineEvent[]; nextCursor: string | null }> {
  const machine = await findMachine(tx, org, name);
  let after: string | null = null;
  if (page.cursor) {
    const [id] = decodeCursor(page.cursor, 1);
    if (!id || !/^\d+$/.test(id))
      throw new ValidationError('querystring.cursor', 'is not a cursor returned by this API');
    after = id;
  }
  const rows = await tx.query<EventRow>(
    `SELECT e.id, e.at, e.kind, e.from_state, e.to_state, e.reason, e.actor_id,
            u.email AS actor_email, u.name AS actor_name
       FROM machine_events e LEFT JOIN users u ON u.id = e.actor_id
      WHERE e.machine_id = $1 AND ($2::bigint IS NULL OR e.id > $2::bigint)
      ORDER BY e.id LIMIT $3`,
    [machine.id, after, page.limit + 1],
  );
  const more = rows.length > page.limit;
  const items = rows.slice(0, page.limit).map((row) => ({
    id: String(row.id),
    at: iso(row.at),
    kind: row.kind,
    from: row.from_state,
    to: row.to_state,
    reason: row.reason,
    actor: presentUser(row.actor_id, row.actor_email, row.actor_name),
  }));
  const last = items.at(-1);
  return { items, nextCursor: more && last ? encodeCursor([last.id]) : null };
}
