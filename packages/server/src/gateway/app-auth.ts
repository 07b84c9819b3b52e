// Signing in on a machine host (anchors §3.3, after Coder): the main origin, which holds the
// user's session cookie, hands the app host a short-lived single-use ticket in a redirect;
// the app host trades it for its own cookie, named after the host so that one machine's
// cookie is never sent to another. The cookie is signed by the server and names the sign-in
// session it came from, so signing out (or revoking that session) ends it too.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashSecret } from '../auth/secrets.js';
import type { Database } from '../db/database.js';

export const TICKET_TTL_MS = 60_000;
export const APP_COOKIE_TTL_SECONDS = 24 * 3600;
export const APP_COOKIE_PREFIX = 'snapvm_app_';

export interface AppIdentity {
  userId: string;
  /** The sign-in session (auth_sessions.id) the identity derives from. */
  sessionId: string;
}

/** The cookie name for one machine host. */
export function appCookieName(hostname: string): string {
  return `${APP_COOKIE_PREFIX}${createHash('sha256').update(hostname).digest('hex').slice(0, 16)}`;
}

/**
 * The key that signs app cookies: SNAPVM_APP_KEY when set (servers sharing a database must
 * share it), else one generated into the data directory on first start.
 */
export async function loadAppKey(dataDir: string, fromEnv: string | null): Promise<Buffer> {
  if (fromEnv) return createHash('sha256').update(fromEnv).digest();
  const file = join(dataDir, 'app-cookie.key');
  try {
    const existing = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
    if (existing.length === 32) return existing;
  } catch {}
  const key = randomBytes(32);
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, key.toString('base64url'), { mode: 0o600 });
  await chmod(file, 0o600);
  return key;
}

export class AppAuth {
  // Tickets live a minute in the database (app_login_tickets), so the server that redeems one
  // need not be the one that issued it.
  constructor(
    private readonly key: Buffer,
    private readonly db: Database,
  ) {}

  async issueTicket(identity: AppIdentity, hostname: string): Promise<string> {
    const ticket = randomBytes(24).toString('base64url');
    await this.db.asSystem(async (tx) => {
      await tx.query('DELETE FROM app_login_tickets WHERE expires_at < now()');
      await tx.query(
        `INSERT INTO app_login_tickets (ticket_hash, user_id, session_id, hostname, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
        [hashSecret(ticket), identity.userId, identity.sessionId, hostname, TICKET_TTL_MS / 1000],
      );
    });
    return ticket;
  }

  /** Single use: a ticket is gone after the first try, whatever the outcome. */
  async redeemTicket(ticket: string, hostname: string): Promise<AppIdentity | null> {
    const [found] = await this.db.asSystem((tx) =>
      tx.query<{ user_id: string; session_id: string; hostname: string; fresh: boolean }>(
        `DELETE FROM app_login_tickets WHERE ticket_hash = $1
         RETURNING user_id, session_id, hostname, expires_at > now() AS fresh`,
        [hashSecret(ticket)],
      ),
    );
    if (!found?.fresh || found.hostname !== hostname) return null;
    return { userId: found.user_id, sessionId: found.session_id };
  }

  cookieValue(identity: AppIdentity, hostname: string): string {
    const expires = Math.floor(Date.now() / 1000) + APP_COOKIE_TTL_SECONDS;
    const payload = `${identity.userId}.${identity.sessionId}.${expires}`;
    return `${payload}.${this.sign(`${hostname}|${payload}`)}`;
  }

  readCookie(value: string, hostname: string): AppIdentity | null {
    const parts = value.split('.');
    if (parts.length !== 4) return null;
    const [userId, sessionId, expires, signature] = parts as [string, string, string, string];
    const expected = Buffer.from(this.sign(`${hostname}|${userId}.${sessionId}.${expires}`));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    if (Number(expires) * 1000 < Date.now()) return null;
    return { userId, sessionId };
  }

  private sign(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }
}
