import type { Database } from '../db/database.js';
import { hashSecret } from './secrets.js';

/** Who is calling, and how they proved it. */
export interface Actor {
  userId: string;
  via: 'session' | 'token';
  /** The auth session or API token id. */
  credentialId: string;
}

/** Resolves a session cookie or bearer token to its user; null when missing, expired or revoked. */
export async function resolveActor(
  db: Database,
  credentials: { bearer: string | null; session: string | null },
): Promise<Actor | null> {
  const via = credentials.bearer ? 'token' : credentials.session ? 'session' : null;
  const secret = credentials.bearer ?? credentials.session;
  if (!via || !secret) return null;
  const fn = via === 'token' ? 'snapvm_token_user' : 'snapvm_session_user';
  const [row] = await db.statement<{ credential_id: string; user_id: string }>(
    `SELECT credential_id, user_id FROM ${fn}($1)`,
    [hashSecret(secret)],
  );
  return row ? { userId: row.user_id, via, credentialId: row.credential_id } : null;
}
