import type { CreateTokenBody, Token } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Database } from '../db/database.js';
import { iso, isoOrNull } from '../db/values.js';
import { NotFoundError } from '../errors.js';
import type { Actor } from './actor.js';
import { generateSecret, hashSecret } from './secrets.js';

interface TokenRow {
  id: string;
  name: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
}

const COLUMNS = 'id, name, created_at, expires_at, last_used_at';

function presentToken(row: TokenRow): Token {
  return {
    id: row.id,
    name: row.name,
    createdAt: iso(row.created_at),
    expiresAt: isoOrNull(row.expires_at),
    lastUsedAt: isoOrNull(row.last_used_at),
  };
}

/** Creates an API token; the secret is returned here once and stored only as a hash. */
export function createApiToken(
  db: Database,
  actor: Actor,
  body: CreateTokenBody,
  ip: string,
): Promise<Token & { token: string }> {
  const secret = generateSecret('snapvm_tok');
  return db.asUser(actor.userId, async (tx) => {
    const [row] = await tx.query<TokenRow>(
      `INSERT INTO api_tokens (user_id, name, token_hash, expires_at) VALUES ($1, $2, $3, $4)
       RETURNING ${COLUMNS}`,
      [actor.userId, body.name, hashSecret(secret), body.expiresAt ?? null],
    );
    if (!row) throw new Error('token insert returned no row');
    await recordAudit(tx, {
      orgId: null,
      actorId: actor.userId,
      action: 'token.create',
      targetType: 'api_token',
      targetId: row.id,
      ip,
      details: { name: body.name },
    });
    return { ...presentToken(row), token: secret };
  });
}

export function listApiTokens(db: Database, actor: Actor): Promise<Token[]> {
  return db.asUser(actor.userId, async (tx) =>
    (
      await tx.query<TokenRow>(
        `SELECT ${COLUMNS} FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at, id`,
      )
    ).map(presentToken),
  );
}

export function revokeApiToken(db: Database, actor: Actor, id: string, ip: string): Promise<void> {
  return db.asUser(actor.userId, async (tx) => {
    const [row] = await tx.query<{ id: string }>(
      'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id',
      [id],
    );
    if (!row) throw new NotFoundError('API token');
    await recordAudit(tx, {
      orgId: null,
      actorId: actor.userId,
      action: 'token.revoke',
      targetType: 'api_token',
      targetId: id,
      ip,
    });
  });
}
