import type { AuditEntry } from '@snapvm/protocol';
import { decodeCursor, encodeCursor } from '../api/cursor.js';
import { presentUser } from '../auth/user-presenter.js';
import type { Tx } from '../db/database.js';
import { iso } from '../db/values.js';
import { ValidationError } from '../errors.js';

export interface AuditRecord {
  orgId: string | null;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId?: string | null;
  ip: string | null;
  details?: Record<string, unknown>;
}

/** Appends to the audit log inside the caller's transaction, so it commits with the change. */
export async function recordAudit(tx: Tx, record: AuditRecord): Promise<void> {
  await tx.query(
    `INSERT INTO audit_log (org_id, actor_id, action, target_type, target_id, ip, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      record.orgId,
      record.actorId,
      record.action,
      record.targetType,
      record.targetId ?? null,
      record.ip,
      JSON.stringify(record.details ?? {}),
    ],
  );
}

interface AuditRow {
  id: string | number | bigint;
  at: Date | string;
  action: string;
  target_type: string;
  target_id: string | null;
  ip: string | null;
  details: Record<string, unknown> | string;
  actor_id: string | null;
  actor_email: string | null;
  actor_name: string | null;
}

/** The org's audit log, newest first; RLS limits it to admins and owners. */
export async function listAudit(
  tx: Tx,
  orgId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  let before: string | null = null;
  if (page.cursor) {
    const [id] = decodeCursor(page.cursor, 1);
    if (!id || !/^\d+$/.test(id))
      throw new ValidationError('querystring.cursor', 'is not a cursor returned by this API');
    before = id;
  }
  const rows = await tx.query<AuditRow>(
    `SELECT a.id, a.at, a.action, a.target_type, a.target_id, a.ip, a.details, a.actor_id,
            u.email AS actor_email, u.name AS actor_name
       FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
      WHERE a.org_id = $1 AND ($2::bigint IS NULL OR a.id < $2::bigint)
      ORDER BY a.id DESC LIMIT $3`,
    [orgId, before, page.limit + 1],
  );
  const more = rows.length > page.limit;
  const items = rows.slice(0, page.limit).map((row) => ({
    id: String(row.id),
    at: iso(row.at),
    actor: presentUser(row.actor_id, row.actor_email, row.actor_name),
    action: row.action,
    target: { type: row.target_type, id: row.target_id },
    ip: row.ip,
    details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details,
  }));
  const last = items.at(-1);
  return { items, nextCursor: more && last ? encodeCursor([last.id]) : null };
}
