// Test fixtures: a real server on a random port over a real database (a copy of a migrated
// PGlite template, or a fresh database on SNAPVM_TEST_DATABASE_URL), and a small client.
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { LoginLimits } from '../auth/login-limiter.js';
import { type Config, loadConfig } from '../config.js';
import type { Database } from '../db/database.js';
import { readMigrations } from '../db/migrate.js';
import { openDatabase, pgliteDataDir } from '../db/open-database.js';
import { type RunningServer, startServer } from '../server.js';

const CACHE_DIR = fileURLToPath(
  new URL('../../../../node_modules/.cache/snapvm/', import.meta.url),
);

export const testDatabaseUrl = process.env.SNAPVM_TEST_DATABASE_URL || null;

/**
 * PGlite's initdb takes seconds, so one migrated data directory per set of migrations is
 * kept in node_modules/.cache and copied for every test server.
 */
async function pgliteTemplate(): Promise<string> {
  const hash = createHash('sha256');
  for (const m of await readMigrations()) hash.update(m.name).update(m.sql);
  const name = `pglite-template-${hash.digest('hex').slice(0, 16)}`;
  const dir = join(CACHE_DIR, name);
  if (await stat(dir).catch(() => null)) return dir;
  await mkdir(CACHE_DIR, { recursive: true });
  for (const old of await readdir(CACHE_DIR))
    if (old.startsWith('pglite-template-') && old !== name)
      await rm(join(CACHE_DIR, old), { recursive: true, force: true });
  const building = join(CACHE_DIR, `${name}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const db = await openDatabase({
    databaseUrl: null,
    databaseAppPassword: null,
    dataDir: building,
    databasePoolSize: 1,
    statementTimeoutMs: 10_000,
  });
  await db.close();
  // Another test process may have won the race; either copy is equally good.
  await rename(building, dir).catch(() => rm(building, { recursive: true, force: true }));
  return dir;
}

/** A fresh, empty database on the test PostgreSQL server; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!testDatabaseUrl) throw new Error('SNAPVM_TEST_DATABASE_URL is not set');
  const name = `snapvm_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: testDatabaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: testDatabaseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface TestDatabaseHandle {
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** Where a test server keeps its data: a PGlite copy or a fresh PostgreSQL database. */
export async function prepareTestDatabase(): Promise<TestDatabaseHandle> {
  const dataDir = await mkdtemp(join(tmpdir(), 'snapvm-test-'));
  if (testDatabaseUrl) {
    const database = await createTestDatabase();
    return {
      env: { SNAPVM_DATA_DIR: dataDir, DATABASE_URL: database.url },
      async cleanup() {
        await database.drop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }
  await cp(await pgliteTemplate(), pgliteDataDir(dataDir), { recursive: true });
  return {
    env: { SNAPVM_DATA_DIR: dataDir },
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** The data layer itself over a prepared test database, for tests below the HTTP API. */
export function openTestDatabase(handle: TestDatabaseHandle): Promise<Database> {
  return openDatabase({
    databaseUrl: handle.env.DATABASE_URL ?? null,
    databaseAppPassword: null,
    dataDir: handle.env.SNAPVM_DATA_DIR ?? '',
    databasePoolSize: 2,
    statementTimeoutMs: 10_000,
  });
}

export interface TestServer extends RunningServer {
  config: Config;
  client(credentials?: Credentials): ApiClient;
  /** Signs up a new user and returns a client holding their session cookie. */
  signUp(name?: string): Promise<ApiClient & { user: { id: string; email: string } }>;
  close(): Promise<void>;
}

export async function startTestServer(
  options: {
    env?: Record<string, string>;
    loginLimits?: LoginLimits;
    logStream?: NodeJS.WritableStream;
  } = {},
): Promise<TestServer> {
  const database = await prepareTestDatabase();
  const config = loadConfig({
    SNAPVM_LISTEN: '127.0.0.1:0',
    SNAPVM_LOG_LEVEL: 'silent',
    SNAPVM_TRUST_PROXY: '1',
    // API tests work on records only; lifecycle tests turn machines on with their own host lane.
    SNAPVM_LIFECYCLE: 'off',
    ...database.env,
    ...options.env,
  });
  let server: RunningServer;
  try {
    server = await startServer(config, {
      ...(options.loginLimits ? { loginLimits: options.loginLimits } : {}),
      ...(options.logStream ? { logStream: options.logStream } : {}),
    });
  } catch (err) {
    await database.cleanup();
    throw err;
  }
  let users = 0;
  const base = server.url;
  return {
    ...server,
    config,
    client: (credentials) => new ApiClient(base, credentials),
    async signUp(name = 'user') {
      users++;
      const email = `${name}-${users}-${randomBytes(3).toString('hex')}@example.com`;
      const anonymous = new ApiClient(base);
      const res = await anonymous.post('/api/v1/auth/signup', {
        email,
        password: 'correct horse battery',
        name,
      });
      if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
      const cookie = /snapvm_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
      const client = new ApiClient(base, { session: cookie ?? '' });
      return Object.assign(client, { user: res.body as { id: string; email: string } });
    },
    async close() {
      await server.stop();
      await database.cleanup();
    },
  };
}

export interface Credentials {
  session?: string;
  token?: string;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON shapes
  body: any;
}

export class ApiClient {
  constructor(
    readonly base: string,
    readonly credentials: Credentials = {},
  ) {}

  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse> {
    const all: Record<string, string> = { ...headers };
    if (this.credentials.session) all.cookie = `snapvm_session=${this.credentials.session}`;
    if (this.credentials.token) all.authorization = `Bearer ${this.credentials.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      all['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers: all, body: payload });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, undefined, headers);
  }
  post(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('POST', path, body, headers);
  }
  patch(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request('PATCH', path, body, headers);
  }
  delete(path: string, headers?: Record<string, string>) {
    return this.request('DELETE', path, undefined, headers);
  }
}
