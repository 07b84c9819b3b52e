import type { Role } from '@snapvm/protocol';
import type { Actor } from '../auth/actor.js';
import { NotFoundError, UnauthorizedError } from '../errors.js';

export type Row = Record<string, unknown>;

/** One transaction's queries; everything a handler does goes through one of these. */
export interface Tx {
  query<T = Row>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/**
 * What a database engine must provide: transactions that begin with a prelude of settings,
 * run as the row-level-security-bound application role.
 */
export interface Connector {
  readonly kind: 'pglite' | 'postgres';
  /** `preludeRows` holds each prelude statement's rows (BEGIN's and SET's too, empty). */
  transaction<T>(prelude: string, fn: (tx: Tx, preludeRows: Row[][]) => Promise<T>): Promise<T>;
  /** One statement in its own implicit transaction, as the application role. */
  statement<T>(sql: string, params: unknown[]): Promise<T[]>;
  ping(): Promise<void>;
  stats(): PoolStats;
  close(): Promise<void>;
}

export interface OrgContext {
  orgId: string;
  slug: string;
  name: string;
  role: Role;
  planId: string;
  createdAt: Date | string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Preludes go out with BEGIN in one simple-protocol round trip: no parameters there. */
function uuidLiteral(value: string): string {
  if (!UUID.test(value)) throw new Error('acting user id is not a uuid');
  return `'${value}'`;
}

export interface CredentialHash {
  via: Actor['via'];
  /** SHA-256 hex of the session cookie or API token. */
  hash: string;
}

/** Sets the org settings only on the row that proves membership (slug and user are unique). */
function membershipQuery(orgSlug: string): string {
  // Route parameters are validated names already; this keeps the literal safe regardless.
  const slug = /^[a-z][a-z0-9-]{0,29}$/.test(orgSlug) ? orgSlug : '';
  return `SELECT o.id AS "orgId", o.slug, o.name, o.plan_id AS "planId", m.role,
            o.created_at AS "createdAt",
            set_config('snapvm.org_id', o.id::text, true),
            set_config('snapvm.org_role', m.role, true)
       FROM orgs o JOIN memberships m ON m.org_id = o.id AND m.user_id = snapvm_user_id()
      WHERE o.slug = '${slug}'`;
}

function orgFrom(preludeRows: Row[][], orgSlug: string): OrgContext {
  const org = preludeRows.at(-1)?.[0] as OrgContext | undefined;
  if (!org) throw new NotFoundError(`Organization "${orgSlug}"`);
  return org;
}

/**
 * The single choke point for tenancy: every transaction first sets who is acting, and the
 * RLS policies of migrations/0001-init.sql read those transaction-local settings.
 */
export class Database {
  constructor(private readonly connector: Connector) {}

  get kind(): 'pglite' | 'postgres' {
    return this.connector.kind;
  }

  /** For work with no acting user: credential look-ups, org creation, the reconciler. */
  asSystem<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.connector.transaction(`SELECT set_config('snapvm.system', 'on', true)`, fn);
  }

  /** A signed-in user outside any org: their account, tokens and memberships. */
  asUser<T>(userId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.connector.transaction(
      `SELECT set_config('snapvm.user_id', ${uuidLiteral(userId)}, true)`,
      fn,
    );
  }

  /**
   * A signed-in user acting inside one org. The org context is set only when the user is a
   * member (in the same statement that checks it); otherwise the org is "not found".
   */
  asMember<T>(userId: string, orgSlug: string, fn: (tx: Tx, org: OrgContext) => Promise<T>) {
    const prelude = `SELECT set_config('snapvm.user_id', ${uuidLiteral(userId)}, true);
      ${membershipQuery(orgSlug)}`;
    return this.connector.transaction(prelude, (tx, rows) => fn(tx, orgFrom(rows, orgSlug)));
  }

  /**
   * Like asMember for a caller known only by the hash of their session cookie or API token:
   * the credential, the membership and all settings take the transaction's first round trip.
   */
  asCaller<T>(
    credential: CredentialHash,
    orgSlug: string,
    fn: (tx: Tx, actor: Actor, org: OrgContext) => Promise<T>,
  ): Promise<T> {
    if (!/^[0-9a-f]{64}$/.test(credential.hash)) throw new Error('credential hash is not hex');
    const lookup = credential.via === 'token' ? 'snapvm_token_user' : 'snapvm_session_user';
    const prelude = `SELECT credential_id, user_id, set_config('snapvm.user_id', user_id::text, true)
        FROM ${lookup}('${credential.hash}');
      ${membershipQuery(orgSlug)}`;
    return this.connector.transaction(prelude, (tx, rows) => {
      const found = rows.at(-2)?.[0] as { credential_id: string; user_id: string } | undefined;
      if (!found) throw new UnauthorizedError();
      const actor = {
        userId: found.user_id,
        via: credential.via,
        credentialId: found.credential_id,
      };
      return fn(tx, actor, orgFrom(rows, orgSlug));
    });
  }

  /**
   * One statement with no acting user or org: only for functions that carry their own narrow
   * system path (migrations/0003-credential-lookups.sql).
   */
  statement<T = Row>(sql: string, params: unknown[]): Promise<T[]> {
    return this.connector.statement<T>(sql, params);
  }

  ping(): Promise<void> {
    return this.connector.ping();
  }

  stats(): PoolStats {
    return this.connector.stats();
  }

  close(): Promise<void> {
    return this.connector.close();
  }
}
