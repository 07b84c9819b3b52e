import type { LoginBody, Me, SignupBody, User } from '@snapvm/protocol';
import { recordAudit } from '../audit/audit-log.js';
import type { Database, Tx } from '../db/database.js';
import { sqlState } from '../db/values.js';
import { ConflictError, ForbiddenError, UnauthorizedError } from '../errors.js';
import type { Actor } from './actor.js';
import type { LoginLimiter } from './login-limiter.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}

export interface SignedIn {
  user: User;
  sessionToken: string;
}

async function startSession(
  tx: Tx,
  userId: string,
  ttlHours: number,
  client: ClientInfo,
): Promise<string> {
  const token = generateSecret('snapvm_ses');
  await tx.query(
    `INSERT INTO auth_sessions (user_id, token_hash, expires_at, ip, user_agent)
     VALUES ($1, $2, now() + make_interval(hours => $3), $4, $5)`,
    [userId, hashSecret(token), ttlHours, client.ip, client.userAgent?.slice(0, 300) ?? null],
  );
  return token;
}

/**
 * Creates an account and signs it in. With invite-only signup, only the very first user and
 * emails holding a pending invitation may sign up.
 */
export async function signUp(
  db: Database,
  body: SignupBody,
  options: { inviteOnly: boolean; sessionTtlHours: number },
  client: ClientInfo,
): Promise<SignedIn> {
  const passwordHash = await hashPassword(body.password);
  return db.asSystem(async (tx) => {
    if (options.inviteOnly) {
      const [allowed] = await tx.query(
        `SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM users)
            OR EXISTS (SELECT 1 FROM invitations WHERE lower(email) = $1
                         AND accepted_at IS NULL AND expires_at > now())`,
        [body.email],
      );
      if (!allowed)
        throw new ForbiddenError(
          'Signup on this server is by invitation only; ask an org admin to invite this email.',
          'signup_closed',
        );
    }
    let user: User;
    try {
      [user] = (await tx.query<User>(
        `INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3)
         RETURNING id, email, name`,
        [body.email, body.name, passwordHash],
      )) as [User];
    } catch (err) {
      if (sqlState(err) === '23505')
        throw new ConflictError('An account with this email already exists.', 'email_taken');
      throw err;
    }
    const sessionToken = await startSession(tx, user.id, options.sessionTtlHours, client);
    await recordAudit(tx, {
      orgId: null,
      actorId: user.id,
      action: 'user.signup',
      targetType: 'user',
      targetId: user.id,
      ip: client.ip,
    });
    return { user, sessionToken };
  });
}

const BAD_CREDENTIALS = 'Email or password is incorrect.';

export async function logIn(
  db: Database,
  body: LoginBody,
  options: { sessionTtlHours: number; limiter: LoginLimiter },
  client: ClientInfo,
): Promise<SignedIn> {
  options.limiter.checkAttempt(client.ip, body.email);
  const [found] = await db.asSystem((tx) =>
    tx.query<User & { password_hash: string }>(
      'SELECT id, email, name, password_hash FROM users WHERE lower(email) = $1',
      [body.email],
    ),
  );
  if (!(await verifyPassword(found?.password_hash ?? null, body.password)) || !found) {
    options.limiter.recordFailure(body.email);
    throw new UnauthorizedError(BAD_CREDENTIALS);
  }
  options.limiter.recordSuccess(body.email);
  const user = { id: found.id, email: found.email, name: found.name };
  const sessionToken = await db.asUser(user.id, async (tx) => {
    const token = await startSession(tx, user.id, options.sessionTtlHours, client);
    await recordAudit(tx, {
      orgId: null,
      actorId: user.id,
      action: 'user.login',
      targetType: 'user',
      targetId: user.id,
      ip: client.ip,
    });
    return token;
  });
  return { user, sessionToken };
}

export async function logOut(db: Database, actor: Actor | null, ip: string): Promise<void> {
  if (actor?.via !== 'session') return;
  await db.asUser(actor.userId, async (tx) => {
    await tx.query('UPDATE auth_sessions SET revoked_at = now() WHERE id = $1', [
      actor.credentialId,
    ]);
    await recordAudit(tx, {
      orgId: null,
      actorId: actor.userId,
      action: 'user.logout',
      targetType: 'session',
      targetId: actor.credentialId,
      ip,
    });
  });
}

export function describeMe(db: Database, actor: Actor): Promise<Me> {
  return db.asUser(actor.userId, async (tx) => {
    const [user] = await tx.query<User>('SELECT id, email, name FROM users WHERE id = $1', [
      actor.userId,
    ]);
    if (!user) throw new UnauthorizedError();
    const orgs = await tx.query<Me['orgs'][number]>(
      `SELECT o.slug, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id
        WHERE m.user_id = $1 ORDER BY o.slug`,
      [actor.userId],
    );
    return { user, orgs };
  });
}
