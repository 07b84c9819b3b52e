import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createTestDatabase, testDatabaseUrl } from '../test-support/test-server.js';
import { migrate, readMigrations } from './migrate.js';
import { openDatabase } from './open-database.js';

const settings = { databaseAppPassword: null, databasePoolSize: 2, statementTimeoutMs: 10_000 };

describe('migrations', () => {
  test('migration files are numbered without gaps', async () => {
    const versions = (await readMigrations()).map((m) => m.version);
    assert.deepEqual(
      versions,
      versions.map((_, i) => i + 1),
    );
  });

  describe('on PostgreSQL', {
    skip: !testDatabaseUrl && 'SNAPVM_TEST_DATABASE_URL is not set',
  }, () => {
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    before(async () => {
      database = await createTestDatabase();
    });
    after(() => database?.drop());

    test('two servers migrating the same database at once both start, applying each migration once', async () => {
      const open = () => openDatabase({ ...settings, databaseUrl: database.url, dataDir: '' });
      const dbs = await Promise.all([open(), open()]);
      await Promise.all(dbs.map((db) => db.close()));
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      const { rows } = await admin.query('SELECT version FROM schema_migrations');
      await admin.end();
      assert.equal(rows.length, (await readMigrations()).length);
    });
  });

  describe('on PGlite', () => {
    test('reopening a migrated data directory applies nothing twice', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'snapvm-migrate-'));
      try {
        for (const expected of [(await readMigrations()).length, 0]) {
          const db = await PGlite.create(dir);
          const session = {
            query: async <T>(sql: string, params?: unknown[]) =>
              (await db.query<T>(sql, params)).rows,
            exec: async (sql: string) => {
              await db.exec(sql);
            },
          };
          assert.equal((await migrate(session)).length, expected);
          await db.close();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
