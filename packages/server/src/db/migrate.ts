import { readdir, readFile } from 'node:fs/promises';

/** A privileged session used only at start-up: migrations and the application role. */
export interface AdminSession {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements. */
  exec(sql: string): Promise<void>;
}

// Compiled code lives in dist/; the SQL stays in src/ so there is one copy of each migration.
const MIGRATIONS_DIR = new URL('../../src/db/migrations/', import.meta.url);
// Any constant works; it only has to be the same in every server process.
const MIGRATION_LOCK = 727_274_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}-[a-z0-9-]+\.sql$/.test(f));
  files.sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'),
    })),
  );
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock so
 * that servers starting at the same time take turns; `locked` runs under the same lock.
 */
export async function migrate(
  session: AdminSession,
  locked?: () => Promise<void>,
): Promise<string[]> {
  const migrations = await readMigrations();
  await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await session.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await session.query<{ version: number }>('SELECT version FROM schema_migrations')).map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await session.exec('BEGIN');
      try {
        await session.exec(migration.sql);
        await session.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await session.exec('COMMIT');
      } catch (err) {
        await session.exec('ROLLBACK');
        throw err;
      }
      applied.push(migration.name);
    }
    await locked?.();
    return applied;
  } finally {
    await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}

/** What the application role may do; RLS then narrows it row by row. */
export async function grantToAppRole(session: AdminSession, role: string): Promise<void> {
  const r = `"${role.replace(/"/g, '""')}"`;
  await session.exec(`
    GRANT USAGE ON SCHEMA public TO ${r};
    GRANT SELECT ON plans TO ${r};
    GRANT SELECT, INSERT, UPDATE, DELETE ON users, auth_sessions, api_tokens, orgs, memberships,
      invitations, machines, machine_events, service_definitions, app_login_tickets TO ${r};
    GRANT SELECT, INSERT ON audit_log TO ${r};
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${r};`);
}
