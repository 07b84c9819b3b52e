import type { CreateOrgBody, IdleSettings, Org, PatchOrgBody } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Actor } from '../auth/actor.js';
import type { Database, OrgContext, Tx } from '../db/database.js';
import { sqlState } from '../db/values.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.js';
import { ORG_COLUMNS, type OrgRow, presentOrg } from './org-presenter.js';

export function requireOrgAdmin(org: OrgContext, doing: string): void {
  if (org.role !== 'owner' && org.role !== 'admin')
    throw new ForbiddenError(`Only org admins and owners can ${doing}.`);
}

async function readOrg(tx: Tx, orgId: string): Promise<Org> {
  const [row] = await tx.query<OrgRow>(
    `SELECT ${ORG_COLUMNS} FROM orgs o
       JOIN memberships m ON m.org_id = o.id AND m.user_id = snapvm_user_id()
       JOIN plans p ON p.id = o.plan_id
      WHERE o.id = $1`,
    [orgId],
  );
  if (!row) throw new NotFoundError('Organization');
  return presentOrg(row);
}

/** What a new org starts with: its plan and the server's idle defaults. */
export interface NewOrgSettings {
  plan: string;
  idle: IdleSettings;
}

/**
 * Creates an org with the caller as its owner. Runs on the system path: until the owner's
 * membership exists there is no org context to act in.
 */
export function createOrg(
  db: Database,
  actor: Actor,
  body: CreateOrgBody,
  settings: NewOrgSettings,
  ip: string,
): Promise<Org> {
  return db.asSystem(async (tx) => {
    let orgId: string;
    try {
      const [row] = await tx.query<{ id: string }>(
        `INSERT INTO orgs (slug, name, plan_id, idle_suspend_seconds, idle_stop_seconds)
         VALUES ($1, $2, $3, $4, $5) RETURNING id`,
        [
          body.slug,
          body.name,
          settings.plan,
          settings.idle.suspendAfterSeconds,
          settings.idle.stopAfterSeconds,
        ],
      );
      orgId = row?.id ?? '';
    } catch (err) {
      if (sqlState(err) === '23505')
        throw new ConflictError(`The org slug "${body.slug}" is taken.`, 'slug_taken');
      throw err;
    }
    await tx.query(`INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')`, [
      orgId,
      actor.userId,
    ]);
    await recordAudit(tx, {
      orgId,
      actorId: actor.userId,
      action: 'org.create',
      targetType: 'org',
      targetId: orgId,
      ip,
      details: { slug: body.slug, name: body.name },
    });
    await tx.query(`SELECT set_config('snapvm.user_id', $1, true)`, [actor.userId]);
    return readOrg(tx, orgId);
  });
}

export function listOrgs(db: Database, actor: Actor): Promise<Org[]> {
  return db.asUser(actor.userId, async (tx) =>
    (
      await tx.query<OrgRow>(
        `SELECT ${ORG_COLUMNS} FROM orgs o
           JOIN memberships m ON m.org_id = o.id AND m.user_id = snapvm_user_id()
           JOIN plans p ON p.id = o.plan_id
          ORDER BY o.slug`,
      )
    ).map(presentOrg),
  );
}

export function getOrg(tx: Tx, org: OrgContext): Promise<Org> {
  return readOrg(tx, org.orgId);
}

/** Renames the org and/or changes its idle defaults (admins and owners), each audited. */
export async function patchOrg(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  body: PatchOrgBody,
  ip: string,
): Promise<Org> {
  requireOrgAdmin(org, body.idle ? 'change the org settings' : 'rename the org');
  const audit = {
    orgId: org.orgId,
    actorId: actor.userId,
    targetType: 'org',
    targetId: org.orgId,
    ip,
  };
  if (body.name !== undefined) {
    await tx.query('UPDATE orgs SET name = $2 WHERE id = $1', [org.orgId, body.name]);
    await recordAudit(tx, {
      ...audit,
      action: 'org.rename',
      details: { from: org.name, to: body.name },
    });
  }
  if (body.idle) {
    const [before] = await tx.query<{ suspend: number | null; stop: number | null }>(
      `SELECT idle_suspend_seconds AS suspend, idle_stop_seconds AS stop FROM orgs
        WHERE id = $1 FOR UPDATE`,
      [org.orgId],
    );
    if (!before) throw new NotFoundError('Organization');
    const from = { suspendAfterSeconds: before.suspend, stopAfterSeconds: before.stop };
    const to = { ...from, ...body.idle };
    await tx.query(
      'UPDATE orgs SET idle_suspend_seconds = $2, idle_stop_seconds = $3 WHERE id = $1',
      [org.orgId, to.suspendAfterSeconds, to.stopAfterSeconds],
    );
    await recordAudit(tx, { ...audit, action: 'org.idle_defaults', details: { from, to } });
  }
  return readOrg(tx, org.orgId);
}
