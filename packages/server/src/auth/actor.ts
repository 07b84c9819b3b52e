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
  if (credentials.bearer) {
    const hash = hashSecret(credentials.bearer);
    // last_used_at is refreshed at most once a minute so reads don't turn into writes.
    const [row] = await db.asSystem((tx) =>
      tx.query<{ id: string; user_id: string }>(
        `WITH t AS (
           SELECT id, user_id, last_used_at FROM api_tokens
            WHERE token_hash = $1 AND revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > now())),
         touched AS (
           UPDATE api_tokens SET last_used_at = now() FROM t
            WHERE api_tokens.id = t.id
              AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
         SELECT id, user_id FROM t`,
        [hash],
      ),
    );
    return row ? { userId: row.user_id, via: 'token', credentialId: row.id } : null;
  }
  if (credentials.session) {
    const hash = hashSecret(credentials.session);
    const [row] = await db.asSystem((tx) =>
      tx.query<{ id: string; user_id: string }>(
        `SELECT id, user_id FROM auth_sessions
          WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()`,
        [hash],
      ),
    );
    return row ? { userId: row.user_id, via: 'session', credentialId: row.id } : null;
  }
  return null;
}
