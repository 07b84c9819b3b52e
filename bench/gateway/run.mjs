// bench/gateway, side by side in one run (root on Linux; a real server as its own process,
// a real machine on the local driver):
// - HTTP through the machine URL vs. straight to the same server inside the machine
//   (its address on the machine bridge): requests/s with 8 keep-alive connections, from wrk
//   (a load generator in C, which leaves the two cores to the series) and from keep-alive
//   clients in Node (which costs about what the app does, and so flatters a relay); p50/p99
//   latency of one client (added latency without queueing); beside them, a bare TCP relay in
//   Node (no HTTP at all) as the floor of what a relay in a Node process can reach;
// - terminal keystroke echo round trip through the gateway's WebSocket vs. the agent's;
// - time to first byte of a request to a stopped machine (cold) and a suspended one (warm),
//   held by the gateway while the machine wakes.
// `npm run bench -- gateway [seconds]`; RUNS=N wake samples (default 10); CLIENTS=N keep-alive
// clients for requests/s (default 8).

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import { AgentClient } from '../../packages/server/dist/agent-client/agent-client.js';
import { LocalDriver } from '../../packages/server/dist/runtime/local/local-driver.js';
import {
  prepareLocalHost,
  setUpTestDriver,
} from '../../packages/server/dist/runtime/local/test-support.js';
import { prepareTestDatabase } from '../../packages/server/dist/test-support/test-server.js';
import { requireRootOnLinux } from '../require-root.mjs';

const SECONDS = Number(process.argv[2] ?? 5);
const RUNS = Number(process.env.RUNS ?? 10);
const CONCURRENCY = Number(process.env.CLIENTS ?? 8);
const ECHOES = 500;
const CLI = new URL('../../packages/server/dist/cli.js', import.meta.url).pathname;

requireRootOnLinux('gateway');
if (spawnSync('scripts/host-deps.sh', ['wrk'], { stdio: 'inherit' }).status !== 0) process.exit(1);

// The in-machine app: small body, keep-alive, as cheap as an HTTP server gets in Node.
const APP = `import { createServer } from 'node:http';
createServer((req, res) => { res.setHeader('content-type', 'text/plain'); res.end('ok\\n'); })
  .listen(8080);`;

const { rootfs } = await prepareLocalHost();
const setup = setUpTestDriver(rootfs, 41);
const database = await prepareTestDatabase();
const network = setup.options.network;
const env = {
  ...process.env,
  ...database.env,
  SNAPVM_LISTEN: '127.0.0.1:0',
  SNAPVM_LOG_LEVEL: 'warn',
  SNAPVM_LIFECYCLE: 'on',
  SNAPVM_IMAGE_CACHE: process.env.SNAPVM_IMAGE_CACHE || '/var/cache/snapvm-images',
  SNAPVM_AGENT_DIR: setup.options.agentDir,
  SNAPVM_MACHINE_MOUNT_DIR: setup.options.mountDir,
  SNAPVM_MACHINE_BRIDGE: network.bridge,
  SNAPVM_MACHINE_VETH_PREFIX: network.vethPrefix,
  SNAPVM_MACHINE_SUBNET: network.subnet,
  SNAPVM_MACHINE_UID_BASE: String(setup.options.uidBase),
  SNAPVM_CGROUP_PARENT: setup.options.cgroupParent,
  SNAPVM_IDLE_SUSPEND_SECONDS: '0',
  SNAPVM_IDLE_STOP_SECONDS: '0',
  SNAPVM_APPS_DOMAIN: 'localhost',
};

let child;
async function cleanUp() {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const driver = new LocalDriver({ ...setup.options, dataDir: env.SNAPVM_DATA_DIR });
  for (const machine of await driver.list()) await driver.destroy(machine.id).catch(() => {});
  await driver.close();
  await database.cleanup();
  await setup.cleanup();
}
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    cleanUp().finally(() => process.exit(130));
  });

function serve() {
  // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  child = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function call(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const f = (n) => (n < 10 ? n.toFixed(2) : n.toFixed(0));

/** `clients` keep-alive clients in a closed loop for `seconds`. */
async function load(url, headers, clients, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  // Leaner than call(): the body is drained, not parsed, so the generator's own cost (which
  // both sides share on these cores) stays small.
  const once = () =>
    new Promise((resolve, reject) => {
      const req = request(url, { headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    });
  const worker = async () => {
    while (performance.now() < deadline) {
      const start = performance.now();
      const status = await once();
      latencies.push(performance.now() - start);
      if (status !== 200) errors++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  return summarize([{ latencies, elapsed, errors }]);
}

/** CPU seconds of this process's children that have ended (each wrk run), from /proc. */
function childrenCpuSeconds() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const WRK_UNITS = { us: 1e-3, ms: 1, s: 1000 };

/** The same closed loop from wrk: `clients` connections on one thread for `seconds`. */
async function loadWrk(url, headers, clients, seconds) {
  const args = ['-t1', `-c${clients}`, `-d${seconds}s`];
  // wrk sends its own Host unless given one spelled "Host".
  for (const [name, value] of Object.entries(headers))
    args.push('-H', `${name === 'host' ? 'Host' : name}: ${value}`);
  const before = childrenCpuSeconds();
  const wrk = spawn('wrk', [...args, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  wrk.stdout.on('data', (chunk) => {
    out += chunk;
  });
  await new Promise((resolve) => wrk.on('close', resolve));
  const done = /(\d+) requests in ([\d.]+)(us|ms|s)\b/.exec(out);
  if (!done) throw new Error(`wrk said: ${out}`);
  const requests = Number(done[1]);
  const failed = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    out,
  );
  return {
    requests,
    elapsed: (Number(done[2]) * WRK_UNITS[done[3]]) / 1000,
    errors:
      Number(failed?.[1] ?? 0) +
      (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
    cpu: childrenCpuSeconds() - before,
  };
}

function summarize(runs) {
  const latencies = runs.flatMap((r) => r.latencies);
  const elapsed = runs.reduce((sum, r) => sum + r.elapsed, 0);
  return {
    latencies,
    elapsed,
    rps: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

/** Loads of each series in alternating one-second slices: other engineers' jobs come and go
 * on the shared cores, and back-to-back runs of seconds each compared a quiet moment with a
 * busy one. `measure(run, k)` wraps each slice of series k (CPU accounting). */
async function alternating(series, clients, seconds, measure = (run) => run()) {
  const runs = series.map(() => []);
  for (let i = 0; i < seconds; i++)
    for (const [k, { url, headers }] of series.entries())
      runs[k].push(await measure(() => load(url, headers, clients, 1), k));
  return runs.map(summarize);
}

/** The same with wrk: requests/s and CPU per request of each series and process. */
async function alternatingWrk(series, clients, seconds, cpuOf) {
  const totals = series.map(() => ({ requests: 0, elapsed: 0, errors: 0, cpu: {} }));
  for (let i = 0; i < seconds; i++)
    for (const [k, { url, headers }] of series.entries()) {
      const before = cpuOf();
      const run = await loadWrk(url, headers, clients, 1);
      const after = cpuOf();
      const total = totals[k];
      total.requests += run.requests;
      total.elapsed += run.elapsed;
      total.errors += run.errors;
      for (const part of Object.keys(after))
        total.cpu[part] = (total.cpu[part] ?? 0) + after[part] - before[part];
      total.cpu.client = (total.cpu.client ?? 0) + run.cpu;
    }
  return totals.map((t) => ({
    ...t,
    rps: t.requests / t.elapsed,
    us: (part) => ((t.cpu[part] / t.requests) * 1e6).toFixed(0),
  }));
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Host pids of the processes in this lane's machines whose command line matches. */
function machinePids(pattern) {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((pid) => {
      try {
        return (
          readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(setup.options.cgroupParent) &&
          pattern.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
        );
      } catch {
        return false;
      }
    });
}

/** Keystroke → echo round trips over an attach socket (a PTY in cooked mode echoes). */
async function echoRoundTrips(socket) {
  await new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('message', (data, binary) => {
      if (!binary && JSON.parse(data.toString()).type === 'attached') resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 300)); // the snapshot and the prompt go by
  const samples = [];
  for (let i = 0; i < ECHOES; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const start = performance.now();
    await new Promise((resolve) => {
      const onMessage = (data, binary) => {
        if (binary && data.includes(key)) {
          socket.off('message', onMessage);
          resolve();
        }
      };
      socket.on('message', onMessage);
      socket.send(Buffer.from(key));
    });
    samples.push(performance.now() - start);
  }
  socket.close();
  return samples;
}

try {
  const base = await serve();
  const port = new URL(base).port;
  const signup = await call(`${base}/api/v1/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'bench@example.com', password: 'bench-password', name: 'B' }),
  });
  const cookie = String(signup.headers['set-cookie']).split(';')[0];
  const api = (method, path, body) =>
    call(`${base}${path}`, {
      method,
      headers: body === undefined ? { cookie } : { cookie, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  await api('POST', '/api/v1/orgs', { slug: 'bench', name: 'Bench' });
  const token = (await api('POST', '/api/v1/me/tokens', { name: 'bench' })).json.token;
  const M = '/api/v1/orgs/bench/machines/web';
  const created = await api('POST', '/api/v1/orgs/bench/machines', { name: 'web' });
  const machineId = created.json.id;
  const waitFor = async (state) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const machine = (await api('GET', M)).json;
      if (machine.state === state) return;
      if (Date.now() > deadline) {
        const events = (await api('GET', `${M}/events?limit=100`)).json.items;
        throw new Error(
          `the machine never got ${state} (it is ${machine.state}/${machine.desiredState}): ${events.map((e) => `${e.kind} ${e.from}→${e.to} (${e.reason})`).join(' · ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor('started');
  const exec = async (script, stdin) =>
    (await api('POST', `${M}/exec`, { command: ['sh', '-c', script], stdin })).json;
  await exec('cat > /root/app.mjs', APP);
  await api('PUT', `${M}/services/app`, {
    command: '/usr/local/bin/node',
    args: ['/root/app.mjs'],
    httpPort: 8080,
    readiness: { type: 'tcp', port: 8080 },
  });
  while ((await api('GET', `${M}/services/app`)).json.status !== 'ready')
    await new Promise((r) => setTimeout(r, 50));
  const address = (await exec('hostname -I')).stdout.trim().split(/\s+/)[0];

  const gatewayUrl = `http://127.0.0.1:${port}/`;
  const gatewayHeaders = { host: `web--bench.localhost:${port}`, authorization: `Bearer ${token}` };
  const directUrl = `http://${address}:8080/`;
  const check = await call(gatewayUrl, { headers: gatewayHeaders });
  if (check.text !== 'ok\n') throw new Error(`gateway answered ${check.status} ${check.text}`);
  console.log(
    `# machine URL vs. direct to ${address}:8080, ${SECONDS} s each (req/s in alternating 1 s slices); ${CONCURRENCY} clients for req/s, 1 for latency`,
  );
  await load(gatewayUrl, gatewayHeaders, CONCURRENCY, 1); // warm-up: JIT, pools
  await load(directUrl, {}, CONCURRENCY, 1);
  const parts = {
    server: [child.pid],
    agent: machinePids(/agent\.mjs/).filter(
      (pid) => !/tini|unshare/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')),
    ),
    app: machinePids(/app\.mjs/),
  };
  const cpuOf = () =>
    Object.fromEntries(
      Object.entries(parts).map(([k, pids]) => [
        k,
        pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
      ]),
    );
  // The floor for any relay in a Node process: bytes piped between two sockets, no HTTP.
  const relay = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net');
       net.createServer((c) => {
         const u = net.connect(8080, ${JSON.stringify(address)});
         c.setNoDelay(true); u.setNoDelay(true);
         c.pipe(u).pipe(c);
         c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
       }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const relayPort = await new Promise((resolve) =>
    relay.stdout.once('data', (d) => resolve(Number(d))),
  );
  parts.relay = [relay.pid];
  const series = [
    { url: directUrl, headers: {} },
    { url: gatewayUrl, headers: gatewayHeaders },
    { url: `http://127.0.0.1:${relayPort}/`, headers: {} },
  ];
  await load(series[2].url, {}, CONCURRENCY, 1);
  // CPU seconds per series and process, the load generator (this process) as `client`.
  const cpuUsed = series.map(() => ({ server: 0, agent: 0, app: 0, relay: 0, client: 0 }));
  const [directLoad, gatewayLoad, relayLoad] = await alternating(
    series,
    CONCURRENCY,
    SECONDS,
    async (run, k) => {
      const before = cpuOf();
      const clientBefore = process.cpuUsage();
      const result = await run();
      const after = cpuOf();
      for (const part of Object.keys(parts)) cpuUsed[k][part] += after[part] - before[part];
      const client = process.cpuUsage(clientBefore);
      cpuUsed[k].client += (client.user + client.system) / 1e6;
      return result;
    },
  );
  const [directWrk, gatewayWrk, relayWrk] = await alternatingWrk(
    series,
    CONCURRENCY,
    SECONDS,
    cpuOf,
  );
  relay.kill();
  const perRequest = (k, load, part) =>
    ((cpuUsed[k][part] / load.latencies.length) * 1e6).toFixed(0);
  const [directOne, gatewayOne] = await alternating(series.slice(0, 2), 1, SECONDS);
  const share = (a, b) => `${Math.round((100 * a.rps) / b.rps)}% of direct`;
  console.log(
    `gateway.http.requests_per_s ${Math.round(gatewayWrk.rps)}  (direct ${Math.round(directWrk.rps)}; ${share(gatewayWrk, directWrk)}, target ≥ 50%; wrk, ${CONCURRENCY} connections)`,
  );
  console.log(
    `gateway.http.tcp_relay_requests_per_s ${Math.round(relayWrk.rps)}  (${share(relayWrk, directWrk)}: bytes piped by a bare Node process, no HTTP; wrk)`,
  );
  console.log(
    `gateway.http.cpu_us_per_request server ${gatewayWrk.us('server')}, app ${gatewayWrk.us('app')}, wrk ${gatewayWrk.us('client')}  (direct: app ${directWrk.us('app')}, wrk ${directWrk.us('client')}; TCP relay: relay ${relayWrk.us('relay')}, app ${relayWrk.us('app')}, wrk ${relayWrk.us('client')})`,
  );
  console.log(
    `gateway.http.node_clients.requests_per_s ${Math.round(gatewayLoad.rps)}  (direct ${Math.round(directLoad.rps)}; ${share(gatewayLoad, directLoad)}; TCP relay ${share(relayLoad, directLoad)}; ${CONCURRENCY} keep-alive clients in Node)`,
  );
  console.log(
    `gateway.http.p50_ms ${f(gatewayOne.p50)}  (direct ${f(directOne.p50)}; added ${f(gatewayOne.p50 - directOne.p50)}, target < 1)`,
  );
  console.log(
    `gateway.http.p99_ms ${f(gatewayOne.p99)}  (direct ${f(directOne.p99)}; added ${f(gatewayOne.p99 - directOne.p99)})`,
  );
  console.log(
    `gateway.http.loaded_p50_ms ${f(gatewayLoad.p50)}  (direct ${f(directLoad.p50)}, ${CONCURRENCY} clients)`,
  );
  console.log(
    `gateway.http.node_clients.cpu_us_per_request server ${perRequest(1, gatewayLoad, 'server')}, agent ${perRequest(1, gatewayLoad, 'agent')}, app ${perRequest(1, gatewayLoad, 'app')}, load generator ${perRequest(1, gatewayLoad, 'client')}  (direct: app ${perRequest(0, directLoad, 'app')}, load generator ${perRequest(0, directLoad, 'client')}; TCP relay: relay ${perRequest(2, relayLoad, 'relay')}, app ${perRequest(2, relayLoad, 'app')}, load generator ${perRequest(2, relayLoad, 'client')})`,
  );
  const errors = [
    directLoad,
    gatewayLoad,
    relayLoad,
    directOne,
    gatewayOne,
    directWrk,
    gatewayWrk,
    relayWrk,
  ].reduce((sum, r) => sum + r.errors, 0);
  if (errors) console.log(`gateway.http.errors ${errors}`);

  // Terminal echo: one session, attached through the gateway and straight to the agent.
  const session = (await api('POST', `${M}/sessions`, { command: ['cat'] })).json;
  const viaGateway = await echoRoundTrips(
    new WebSocket(`ws://127.0.0.1:${port}${M}/sessions/${session.id}/attach`, {
      headers: { cookie },
    }),
  );
  const driver = new LocalDriver({ ...setup.options, dataDir: env.SNAPVM_DATA_DIR });
  await driver.list();
  const agent = new AgentClient(await driver.agentEndpoint(machineId));
  const direct = await echoRoundTrips(agent.webSocket(`/v1/sessions/${session.id}/attach`));
  console.log(
    `gateway.terminal_echo.p50_ms ${f(quantile(viaGateway, 0.5))}  (agent direct ${f(quantile(direct, 0.5))}, n=${ECHOES})`,
  );
  console.log(
    `gateway.terminal_echo.p99_ms ${f(quantile(viaGateway, 0.99))}  (agent direct ${f(quantile(direct, 0.99))}; added ${f(quantile(viaGateway, 0.99) - quantile(direct, 0.99))}, target < 1)`,
  );
  await api('DELETE', `${M}/sessions/${session.id}`);

  // Wake on request: time to the first response byte of a held (non-page) request.
  const firstByte = () =>
    new Promise((resolve, reject) => {
      const start = performance.now();
      const req = request(gatewayUrl, { headers: gatewayHeaders }, (res) => {
        res.once('data', () => {
          const ms = performance.now() - start;
          res.resume();
          res.on('end', () => resolve({ ms, status: res.statusCode }));
        });
      });
      req.on('error', reject);
      req.end();
    });
  for (const [action, state, label] of [
    ['stop', 'stopped', 'cold'],
    ['suspend', 'suspended', 'warm'],
  ]) {
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      await api('POST', `${M}/${action}`);
      if (process.env.BENCH_DEBUG) console.error(`# ${action} ${i}`);
      await waitFor(state);
      const { ms, status } = await firstByte();
      if (status !== 200) throw new Error(`wake request answered ${status}`);
      samples.push(ms);
    }
    console.log(
      `gateway.wake_first_byte.${label}.p50_ms ${f(quantile(samples, 0.5))}  (p95 ${f(quantile(samples, 0.95))}, from ${state}, n=${RUNS}; target ${label === 'cold' ? 500 : 50})`,
    );
  }
} finally {
  await cleanUp();
}
