import type { Member, Role } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Actor } from '../auth/actor.js';
import type { OrgContext, Tx } from '../db/database.js';
import { iso } from '../db/values.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.js';
import { requireOrgAdmin } from './orgs.js';

interface MemberRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  created_at: Date;
}

function presentMember(row: MemberRow): Member {
  return {
    user: { id: row.id, email: row.email, name: row.name },
    role: row.role,
    joinedAt: iso(row.created_at),
  };
}

export async function listMembers(tx: Tx, org: OrgContext): Promise<Member[]> {
  const rows = await tx.query<MemberRow>(
    `SELECT u.id, u.email, u.name, m.role, m.created_at
       FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.org_id = $1 ORDER BY m.created_at, u.id`,
    [org.orgId],
  );
  return rows.map(presentMember);
}

/**
 * Locks the org's owner set for this transaction and checks that `userId` is not its last
 * owner; two concurrent demotions then cannot both pass the check.
 */
async function assertNotLastOwner(tx: Tx, org: OrgContext, userId: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`owners:${org.orgId}`]);
  const [others] = await tx.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM memberships
      WHERE org_id = $1 AND role = 'owner' AND user_id <> $2`,
    [org.orgId, userId],
  );
  if (!others?.n)
    throw new ConflictError(
      'An org must keep at least one owner: make someone else an owner first.',
      'last_owner',
    );
}

async function findMember(tx: Tx, org: OrgContext, userId: string): Promise<MemberRow> {
  const [row] = await tx.query<MemberRow>(
    `SELECT u.id, u.email, u.name, m.role, m.created_at
       FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.org_id = $1 AND m.user_id = $2`,
    [org.orgId, userId],
  );
  if (!row) throw new NotFoundError('Member');
  return row;
}

export async function changeMemberRole(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  userId: string,
  role: Role,
  ip: string,
): Promise<Member> {
  requireOrgAdmin(org, 'change roles');
  const member = await findMember(tx, org, userId);
  if ((member.role === 'owner' || role === 'owner') && org.role !== 'owner')
    throw new ForbiddenError('Only owners can grant or take away the owner role.');
  if (member.role === role) return presentMember(member);
  if (member.role === 'owner') await assertNotLastOwner(tx, org, userId);
  await tx.query('UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2', [
    org.orgId,
    userId,
    role,
  ]);
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'member.role_change',
    targetType: 'user',
    targetId: userId,
    ip,
    details: { from: member.role, to: role },
  });
  return presentMember({ ...member, role });
}

/** Admins remove members (owners only by owners); anyone may leave. */
export async function removeMember(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  userId: string,
  ip: string,
): Promise<void> {
  const leaving = userId === actor.userId;
  if (!leaving) requireOrgAdmin(org, 'remove members');
  const member = await findMember(tx, org, userId);
  if (member.role === 'owner' && !leaving && org.role !== 'owner')
    throw new ForbiddenError('Only owners can remove an owner.');
  if (member.role === 'owner') await assertNotLastOwner(tx, org, userId);
  await tx.query('DELETE FROM memberships WHERE org_id = $1 AND user_id = $2', [org.orgId, userId]);
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: leaving ? 'member.leave' : 'member.remove',
    targetType: 'user',
    targetId: userId,
    ip,
    details: { role: member.role },
  });
}
