import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Connector, PoolStats, Row, Tx } from './database.js';
import { type AdminSession, grantToAppRole, migrate } from './migrate.js';

export const PGLITE_APP_ROLE = 'snapvm_app';

/** Runs one task at a time, in arrival order. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  waiting = 0;
  busy = false;

  run<T>(task: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(async () => {
      this.waiting--;
      this.busy = true;
      try {
        return await task();
      } finally {
        this.busy = false;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}

function adminSession(db: PGlite): AdminSession {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
    exec: async (sql: string) => {
      await db.exec(sql);
    },
  };
}

/**
 * PGlite is one Postgres session and a superuser: transactions are serialized through a
 * queue, and each one switches to the application role with SET LOCAL ROLE (never a session
 * SET, which would outlive the transaction).
 */
export class PgliteConnector implements Connector {
  readonly kind = 'pglite';
  private readonly queue = new Queue();

  private constructor(private readonly db: PGlite) {}

  static async open(dataDir: string): Promise<PgliteConnector> {
    await mkdir(dataDir, { recursive: true });
    const db = await PGlite.create(dataDir);
    try {
      const session = adminSession(db);
      await migrate(session, async () => {
        const [exists] = await session.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
          PGLITE_APP_ROLE,
        ]);
        if (!exists)
          await session.exec(`CREATE ROLE ${PGLITE_APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS`);
        await grantToAppRole(session, PGLITE_APP_ROLE);
      });
      // PGlite runs no autovacuum, so without this the planner never has statistics and
      // sorts a whole org's machines to show one page.
      await session.exec('ANALYZE');
    } catch (err) {
      await db.close();
      throw err;
    }
    return new PgliteConnector(db);
  }

  transaction<T>(prelude: string, fn: (tx: Tx, preludeRows: Row[][]) => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      const started = await this.db.exec(`BEGIN; SET LOCAL ROLE ${PGLITE_APP_ROLE}; ${prelude}`);
      const preludeRows = started.map((r) => r.rows as Row[]);
      const tx: Tx = {
        query: async <R>(sql: string, params?: unknown[]) =>
          (await this.db.query<R>(sql, params)).rows,
      };
      try {
        const result = await fn(tx, preludeRows);
        await this.db.exec('COMMIT');
        return result;
      } catch (err) {
        await this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  statement<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.transaction('', (tx) => tx.query<T>(sql, params));
  }

  ping(): Promise<void> {
    return this.queue.run(async () => {
      await this.db.query('SELECT 1');
    });
  }

  stats(): PoolStats {
    return { total: 1, idle: this.queue.busy ? 0 : 1, waiting: this.queue.waiting };
  }

  close(): Promise<void> {
    return this.queue.run(() => this.db.close());
  }
}
