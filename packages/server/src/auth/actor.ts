import type { Database } from '../db/database.js';
import { hashSecret } from './secrets.js';

/** Who is calling, and how they proved it. */
export interface Actor {
  userId: string;
  via: 'session' | 'token';
  /** The auth session or API token id. */
  credentialId: string;
}

export interface Credential {
  via: Actor['via'];
  secret: string;
}

/** Resolves a session cookie or bearer token to its user; null when expired or revoked. */
export async function resolveActor(
  db: Database,
  { via, secret }: Credential,
): Promise<Actor | null> {
  const fn = via === 'token' ? 'snapvm_token_user' : 'snapvm_session_user';
  const [row] = await db.statement<{ credential_id: string; user_id: string }>(
    `SELECT credential_id, user_id FROM ${fn}($1)`,
    [hashSecret(secret)],
  );
  return row ? { userId: row.user_id, via, credentialId: row.credential_id } : null;
}
