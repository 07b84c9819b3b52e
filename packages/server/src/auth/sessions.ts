import type { SignInSession } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Database } from '../db/database.js';
import { iso } from '../db/values.js';
import { NotFoundError } from '../errors.js';
import type { Actor } from './actor.js';

interface SessionRow {
  id: string;
  created_at: Date;
  expires_at: Date;
  ip: string | null;
  user_agent: string | null;
}

/** The caller's live sign-in sessions (one per browser or device). */
export function listSessions(db: Database, actor: Actor): Promise<SignInSession[]> {
  return db.asUser(actor.userId, async (tx) => {
    const rows = await tx.query<SessionRow>(
      `SELECT id, created_at, expires_at, ip, user_agent FROM auth_sessions
        WHERE revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC, id`,
    );
    return rows.map((row) => ({
      id: row.id,
      createdAt: iso(row.created_at),
      expiresAt: iso(row.expires_at),
      ip: row.ip,
      userAgent: row.user_agent,
      current: actor.via === 'session' && actor.credentialId === row.id,
    }));
  });
}

/** Signs one of the caller's sessions out, e.g. a lost laptop's. */
export function revokeSession(db: Database, actor: Actor, id: string, ip: string): Promise<void> {
  return db.asUser(actor.userId, async (tx) => {
    const [row] = await tx.query(
      `UPDATE auth_sessions SET revoked_at = now()
        WHERE id = $1 AND revoked_at IS NULL RETURNING id`,
      [id],
    );
    if (!row) throw new NotFoundError('Session');
    await recordAudit(tx, {
      orgId: null,
      actorId: actor.userId,
      action: 'session.revoke',
      targetType: 'session',
      targetId: id,
      ip,
    });
  });
}
