import { createHash, createHmac } from 'node:crypto';
import pg from 'pg';
import type { Connector, PoolStats, Row, Tx } from './database.js';
import { type AdminSession, grantToAppRole, migrate } from './migrate.js';

export const POSTGRES_APP_ROLE = 'snapvm_app';

export interface PostgresOptions {
  databaseUrl: string;
  /** Password for the application role; derived from DATABASE_URL when not given. */
  appPassword: string | null;
  poolSize: number;
  statementTimeoutMs: number;
}

function clientSession(client: pg.Client): AdminSession {
  return {
    query: async <T>(sql: string, params?: unknown[]) =>
      (await client.query(sql, params)).rows as T[],
    exec: async (sql: string) => {
      await client.query(sql);
    },
  };
}

function derivePassword(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  // Stable for every database on one server, so replicas and test databases agree on it.
  return createHmac('sha256', `${url.username}:${decodeURIComponent(url.password)}`)
    .update(`snapvm-app-role@${url.host}`)
    .digest('hex');
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as { code?: string }).code ?? '');
}

/**
 * Requests must not run as a superuser or a BYPASSRLS role, whatever DATABASE_URL names.
 * Returns the URL to connect with for requests: DATABASE_URL itself when its role is already
 * bound by RLS, otherwise a login role created for the purpose.
 */
async function prepareAppRole(
  session: AdminSession,
  options: PostgresOptions,
): Promise<{ url: string; created: boolean; password: string }> {
  const [me] = await session.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
  );
  if (me && !me.rolsuper && !me.rolbypassrls)
    return { url: options.databaseUrl, created: false, password: '' };
  const password = options.appPassword ?? derivePassword(options.databaseUrl);
  const [role] = await session.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
    [POSTGRES_APP_ROLE],
  );
  if (!role) {
    try {
      const quoted = (
        await session.query<{ q: string }>('SELECT quote_literal($1) AS q', [password])
      )[0]?.q;
      await session.exec(
        `CREATE ROLE ${POSTGRES_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD ${quoted}`,
      );
    } catch (err) {
      // Roles are cluster-wide: a server migrating another database may have just made it.
      if (!isCode(err, '42710', '23505')) throw err;
    }
  } else if (role.rolsuper || role.rolbypassrls) {
    throw new Error(
      `the database role ${POSTGRES_APP_ROLE} exists but is SUPERUSER or BYPASSRLS; ` +
        `run ALTER ROLE ${POSTGRES_APP_ROLE} NOSUPERUSER NOBYPASSRLS`,
    );
  }
  await grantToAppRole(session, POSTGRES_APP_ROLE);
  const url = new URL(options.databaseUrl);
  url.username = POSTGRES_APP_ROLE;
  url.password = password;
  return { url: url.toString(), created: !role, password };
}

const statementNames = new Map<string, string>();

/**
 * Every query the server sends is a fixed SQL text, so each is prepared once per connection
 * (pg keeps them by name): PostgreSQL then skips parsing and planning on the hot paths.
 */
function prepared(text: string, values?: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (!name) {
    name = `snapvm_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    if (statementNames.size < 1000) statementNames.set(text, name);
  }
  return { name, text, values: values ?? [] };
}

export class PostgresConnector implements Connector {
  readonly kind = 'postgres';

  private constructor(private readonly pool: pg.Pool) {}

  static async open(options: PostgresOptions): Promise<PostgresConnector> {
    const admin = new pg.Client({ connectionString: options.databaseUrl });
    await admin.connect();
    let appUrl = '';
    let password = '';
    try {
      const session = clientSession(admin);
      await migrate(session, async () => {
        ({ url: appUrl, password } = await prepareAppRole(session, options));
      });
      const pool = new pg.Pool({
        connectionString: appUrl,
        max: options.poolSize,
        statement_timeout: options.statementTimeoutMs,
        application_name: 'snapvm',
      });
      // An idle connection dropped by the server (restart, failover) must not crash the
      // process: the pool discards it, and the next transaction opens a fresh one.
      pool.on('error', () => undefined);
      try {
        await pool.query('SELECT 1');
      } catch (err) {
        // The role predates this password (another SNAPVM_DATABASE_APP_PASSWORD): reset it.
        if (!password || !isCode(err, '28P01')) throw err;
        const [{ q } = { q: '' }] = await session.query<{ q: string }>(
          'SELECT quote_literal($1) AS q',
          [password],
        );
        await session.exec(`ALTER ROLE ${POSTGRES_APP_ROLE} PASSWORD ${q}`);
        await pool.query('SELECT 1');
      }
      return new PostgresConnector(pool);
    } finally {
      await admin.end();
    }
  }

  async transaction<T>(
    prelude: string,
    fn: (tx: Tx, preludeRows: Row[][]) => Promise<T>,
  ): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      const started: pg.QueryResult | pg.QueryResult[] = await client.query(`BEGIN; ${prelude}`);
      const preludeRows = (Array.isArray(started) ? started : [started]).map((r) => r.rows);
      const tx: Tx = {
        query: async <R>(sql: string, params?: unknown[]) =>
          (await client.query(prepared(sql, params))).rows as R[],
      };
      try {
        const result = await fn(tx, preludeRows);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  async statement<T>(sql: string, params: unknown[]): Promise<T[]> {
    return (await this.pool.query(prepared(sql, params))).rows as T[];
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  stats(): PoolStats {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
    };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
