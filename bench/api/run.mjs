// bench/api: requests/s and latency of GET /api/v1/orgs/:org/machines (first page of 50)
// with 10,000 machines in the org, on PostgreSQL and on PGlite, beside GET /healthz on the
// same server as the no-database baseline. Run with `npm run bench -- api [seconds]`.
//
// The server runs as its own process (`snapvm serve`); the load comes from a bounded loop of
// keep-alive HTTP clients over loopback in this process. Data is seeded straight into the
// database before the server starts (through the server's own data layer, system path).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { hashPassword } from '../../packages/server/dist/auth/passwords.js';
import { openDatabase } from '../../packages/server/dist/db/open-database.js';

const SECONDS = Number(process.argv[2] ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const MACHINES = 10_000;
const POSTGRES_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const EMAIL = 'bench@example.com';
const PASSWORD = 'bench-password';
const CLI = new URL('../../packages/server/dist/cli.js', import.meta.url).pathname;

async function seed(settings) {
  const db = await openDatabase({
    databaseAppPassword: null,
    databasePoolSize: 1,
    statementTimeoutMs: 120_000,
    ...settings,
  });
  const passwordHash = await hashPassword(PASSWORD);
  await db.asSystem(async (tx) => {
    const [user] = await tx.query(
      'INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id',
      [EMAIL, 'Bench', passwordHash],
    );
    const [org] = await tx.query(
      `INSERT INTO orgs (slug, name, plan_id) VALUES ('bench', 'Bench', 'scale') RETURNING id`,
    );
    await tx.query(`INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')`, [
      org.id,
      user.id,
    ]);
    await tx.query(
      `INSERT INTO machines (org_id, owner_id, name, size, region, runtime, desired_state,
                             observed_state, created_at)
       SELECT $1, $2, 'm-' || i, 'small', 'local', 'local', 'started', 'started',
              now() - make_interval(secs => $3 - i)
         FROM generate_series(1, $3) AS i`,
      [org.id, user.id, MACHINES],
    );
  });
  await db.close();
  if (settings.databaseUrl) {
    // What autovacuum does within a minute of a bulk insert; PGlite analyzes when it opens.
    const admin = new pg.Client({ connectionString: settings.databaseUrl });
    await admin.connect();
    await admin.query('ANALYZE');
    await admin.end();
  }
}

function serve(env) {
  // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
    // The seeded machines are records with no sandbox on this host: with the lifecycle on,
    // the reconciler would try to boot all 10,000 of them while the API is being measured.
    env: {
      ...process.env,
      SNAPVM_LISTEN: '127.0.0.1:0',
      SNAPVM_LOG_LEVEL: 'warn',
      SNAPVM_LIFECYCLE: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function call(agent, url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CONCURRENCY clients in a closed loop for `seconds`; latencies in ms. */
async function load(url, headers, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const start = performance.now();
      const res = await call(agent, url, 'GET', headers);
      latencies.push(performance.now() - start);
      if (res.status !== 200) errors++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { rps: latencies.length / elapsed, elapsed, p50: pct(0.5), p99: pct(0.99), errors };
}

/** CPU seconds (user + system) a process has used, from /proc; 0 where unavailable. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  } catch {
    return 0;
  }
}

/** The PostgreSQL backends serving the benchmark database (same host only). */
async function backendPids(databaseUrl) {
  if (!databaseUrl) return [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  await client.end();
  return rows.map((r) => r.pid);
}

async function benchEngine(engine, settings, env) {
  await seed(settings);
  const { child, url } = await serve(env);
  try {
    const login = await call(
      undefined,
      `${url}/api/v1/auth/login`,
      'POST',
      { 'content-type': 'application/json' },
      JSON.stringify({ email: EMAIL, password: PASSWORD }),
    );
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    const listUrl = `${url}/api/v1/orgs/bench/machines`;
    const first = JSON.parse((await call(undefined, listUrl, 'GET', { cookie })).body);
    if (first.items.length !== 50 || !first.nextCursor)
      throw new Error(`unexpected first page: ${first.items.length} items`);
    await load(listUrl, { cookie }, 2); // warm-up: JIT, connection pool, caches
    // CPU per request is what the machine's load does not change: it bounds the rate an idle
    // 2-core host can reach, whatever else is running during the measurement.
    const backends = await backendPids(settings.databaseUrl);
    const cpuBefore = [cpuSeconds(child.pid), ...backends.map(cpuSeconds), process.cpuUsage()];
    const list = await load(listUrl, { cookie }, SECONDS);
    const requests = list.rps * list.elapsed;
    const serverCpu = (cpuSeconds(child.pid) - cpuBefore[0]) / requests;
    const dbCpu =
      backends.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpuBefore[i + 1], 0) / requests;
    const clientUsage = process.cpuUsage(cpuBefore.at(-1));
    const clientCpu = (clientUsage.user + clientUsage.system) / 1e6 / requests;
    const base = await load(`${url}/healthz`, {}, Math.max(2, SECONDS / 2));
    const f = (n) => n.toFixed(1);
    console.log(
      `api.list_machines.${engine}.requests_per_s ${Math.round(list.rps)}  (baseline /healthz ${Math.round(base.rps)})`,
    );
    console.log(
      `api.list_machines.${engine}.p50_ms ${f(list.p50)}  (baseline /healthz ${f(base.p50)})`,
    );
    console.log(
      `api.list_machines.${engine}.p99_ms ${f(list.p99)}  (baseline /healthz ${f(base.p99)})`,
    );
    console.log(
      `api.list_machines.${engine}.cpu_ms_per_request ${f((serverCpu + dbCpu) * 1000)}  ` +
        `(server ${f(serverCpu * 1000)}, postgres backends ${f(dbCpu * 1000)}; ` +
        `load generator ${f(clientCpu * 1000)} on top)`,
    );
    if (list.errors || base.errors)
      console.log(`api.list_machines.${engine}.errors ${list.errors + base.errors}`);
    return list;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
  }
}

const dataDir = await mkdtemp(join(tmpdir(), 'snapvm-bench-api-'));
// Ctrl-C still removes the temporary database and data directory (the server children get
// the same signal and stop on their own).
process.once('SIGINT', () => {
  cleanUp().finally(() => process.exit(130));
});
const dbName = `snapvm_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: POSTGRES_URL });
let postgresUrl = null;
try {
  console.log(
    `# ${MACHINES} machines in one org, first page of 50, ${CONCURRENCY} keep-alive clients, ${SECONDS} s`,
  );
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${dbName}`;
    postgresUrl = url.toString();
  } catch (err) {
    console.log(`# PostgreSQL skipped: ${err.message} (set BENCH_DATABASE_URL)`);
  }
  if (postgresUrl) {
    const result = await benchEngine(
      'postgres',
      { databaseUrl: postgresUrl, dataDir },
      { DATABASE_URL: postgresUrl, SNAPVM_DATA_DIR: dataDir },
    );
    console.log(
      `# PostgreSQL target ≥1000 req/s and p99 < 50 ms: ${result.rps >= 1000 && result.p99 < 50 ? 'met' : 'NOT met'}`,
    );
  }
  await benchEngine('pglite', { databaseUrl: null, dataDir }, { SNAPVM_DATA_DIR: dataDir });
} finally {
  await cleanUp();
}

async function cleanUp() {
  if (postgresUrl)
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  postgresUrl = null;
  await admin.end().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}
