import type { CreateInvitationBody, Role } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Actor } from '../auth/actor.js';
import { generateSecret, hashSecret } from '../auth/secrets.js';
import type { Database, OrgContext, Tx } from '../db/database.js';
import { iso, isoOrNull } from '../db/values.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  UnprocessableError,
} from '../errors.js';
import { requireOrgAdmin } from './orgs.js';

interface InvitationRow {
  id: string;
  email: string;
  role: Role;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
}

function presentInvitation(row: InvitationRow) {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    createdAt: iso(row.created_at),
    expiresAt: iso(row.expires_at),
    acceptedAt: isoOrNull(row.accepted_at),
  };
}

const COLUMNS = 'id, email, role, created_at, expires_at, accepted_at';

/**
 * Invites an email to the org. There is no mail server: the accept link goes back to the
 * inviter (and, later, the console) and is the only copy of the token.
 */
export async function createInvitation(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  body: CreateInvitationBody,
  options: { publicUrl: string; ttlHours: number },
  ip: string,
) {
  requireOrgAdmin(org, 'invite people');
  if (body.role === 'owner' && org.role !== 'owner')
    throw new ForbiddenError('Only owners can invite new owners.');
  const token = generateSecret('snapvm_inv');
  const [row] = await tx.query<InvitationRow>(
    `INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6)) RETURNING ${COLUMNS}`,
    [org.orgId, body.email, body.role, hashSecret(token), actor.userId, options.ttlHours],
  );
  if (!row) throw new Error('invitation insert returned no row');
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'invitation.create',
    targetType: 'invitation',
    targetId: row.id,
    ip,
    details: { email: body.email, role: body.role },
  });
  return {
    ...presentInvitation(row),
    token,
    url: `${options.publicUrl}/invitations/${encodeURIComponent(token)}`,
  };
}

export async function listInvitations(tx: Tx, org: OrgContext) {
  requireOrgAdmin(org, 'see invitations');
  const rows = await tx.query<InvitationRow>(
    `SELECT ${COLUMNS} FROM invitations WHERE org_id = $1 AND accepted_at IS NULL
      ORDER BY created_at DESC, id`,
    [org.orgId],
  );
  return rows.map(presentInvitation);
}

export async function revokeInvitation(
  tx: Tx,
  org: OrgContext,
  actor: Actor,
  id: string,
  ip: string,
): Promise<void> {
  requireOrgAdmin(org, 'revoke invitations');
  const [row] = await tx.query(
    'DELETE FROM invitations WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL RETURNING id',
    [id, org.orgId],
  );
  if (!row) throw new NotFoundError('Invitation');
  await recordAudit(tx, {
    orgId: org.orgId,
    actorId: actor.userId,
    action: 'invitation.revoke',
    targetType: 'invitation',
    targetId: id,
    ip,
  });
}

/**
 * The signed-in user joins the org. System path: the user is not a member yet, so there is
 * no org context; the token (single use, expiring, bound to the invited email) is the proof.
 */
export function acceptInvitation(db: Database, actor: Actor, token: string, ip: string) {
  return db.asSystem(async (tx) => {
    const [invitation] = await tx.query<{
      id: string;
      org_id: string;
      email: string;
      role: Role;
      expired: boolean;
      accepted_at: Date | null;
    }>(
      `SELECT id, org_id, email, role, expires_at <= now() AS expired, accepted_at
         FROM invitations WHERE token_hash = $1 FOR UPDATE`,
      [hashSecret(token)],
    );
    if (!invitation) throw new NotFoundError('Invitation');
    if (invitation.accepted_at)
      throw new ConflictError('This invitation has already been used.', 'invitation_used');
    if (invitation.expired)
      throw new UnprocessableError(
        'This invitation has expired; ask for a new one.',
        'invitation_expired',
      );
    const [user] = await tx.query<{ email: string }>('SELECT email FROM users WHERE id = $1', [
      actor.userId,
    ]);
    if (!user) throw new UnauthorizedError();
    if (user.email.toLowerCase() !== invitation.email.toLowerCase())
      throw new ForbiddenError(
        'This invitation is for a different email address than the signed-in account.',
        'invitation_email_mismatch',
      );
    await tx.query(
      `INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, user_id) DO NOTHING`,
      [invitation.org_id, actor.userId, invitation.role],
    );
    await tx.query('UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1', [
      invitation.id,
      actor.userId,
    ]);
    await recordAudit(tx, {
      orgId: invitation.org_id,
      actorId: actor.userId,
      action: 'invitation.accept',
      targetType: 'invitation',
      targetId: invitation.id,
      ip,
      details: { role: invitation.role },
    });
    const [org] = await tx.query<{ slug: string; name: string; role: Role }>(
      `SELECT o.slug, o.name, m.role FROM orgs o
         JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1`,
      [invitation.org_id, actor.userId],
    );
    if (!org) throw new Error('membership missing right after insert');
    return org;
  });
}
