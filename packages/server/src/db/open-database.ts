import { join } from 'node:path';
import type { Config } from '../config.js';
import { Database } from './database.js';
import { PgliteConnector } from './pglite-connector.js';
import { PostgresConnector } from './postgres-connector.js';

/** Opens (and migrates) the configured database: PostgreSQL if DATABASE_URL is set, else PGlite. */
export async function openDatabase(
  config: Pick<
    Config,
    'databaseUrl' | 'databaseAppPassword' | 'dataDir' | 'databasePoolSize' | 'statementTimeoutMs'
  >,
): Promise<Database> {
  if (config.databaseUrl)
    return new Database(
      await PostgresConnector.open({
        databaseUrl: config.databaseUrl,
        appPassword: config.databaseAppPassword,
        poolSize: config.databasePoolSize,
        statementTimeoutMs: config.statementTimeoutMs,
      }),
    );
  return new Database(await PgliteConnector.open(pgliteDataDir(config.dataDir)));
}

export function pgliteDataDir(dataDir: string): string {
  return join(dataDir, 'pglite');
}
