import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { eventually, sleep, startTestAgent, type TestAgent } from '../testing/agent-fixture.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const node = process.execPath;

/** Alive and not a zombie (a killed orphan stays a zombie until the host's init reaps it). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
const service = (agent: TestAgent, name: string) =>
  agent.request('GET', `/v1/services/${name}`).then((r) => r.body);

describe('services', () => {
  const agents: TestAgent[] = [];
  after(async () => {
    for (const agent of agents) await agent.cleanup();
  });
  const start = async (stateDir?: string) => {
    const agent = await startTestAgent({}, stateDir);
    agents.push(agent);
    return agent;
  };

  test('services start in dependency order and definitions survive an agent restart', async () => {
    const first = await start();
    const order = join(first.stateDir, 'order.txt');
    const port = await freePort();
    // db takes a while before it listens; api must not start before db's readiness passes.
    const db = await first.request('PUT', '/v1/services/db', {
      command: '/bin/sh',
      args: [
        '-c',
        `sleep 0.4; echo db >> ${order}; exec ${node} -e "require('net').createServer().listen(${port}, '127.0.0.1')"`,
      ],
      readiness: { type: 'tcp', port },
    });
    assert.equal(db.status, 201, JSON.stringify(db.body));
    assert.equal(db.body.status, 'starting', 'the reply shows the service starting');
    for (const [name, deps] of [
      ['api', ['db']],
      ['web', ['api']],
    ] as const) {
      const res = await first.request('PUT', `/v1/services/${name}`, {
        command: '/bin/sh',
        args: ['-c', `echo ${name} >> ${order}; exec sleep 60`],
        dependsOn: deps,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    await eventually(
      () => service(first, 'web'),
      (s) => s.status === 'running',
      'web running',
    );
    assert.equal((await service(first, 'db')).status, 'ready');
    // 'running' means spawned; the shell may not have written its line yet.
    const lines = () => readFileSync(order, 'utf8').trim().split('\n');
    await eventually(
      async () => lines(),
      (l) => l.length >= 3,
      'three lines',
    );
    assert.deepEqual(lines(), ['db', 'api', 'web']);
    const oldPid = (await service(first, 'db')).pid;
    await first.stop();
    assert.equal(isAlive(oldPid), false, 'services stop with the agent');

    const second = await start(first.stateDir);
    await eventually(
      () => service(second, 'web'),
      (s) => s.status === 'running',
      'web again',
    );
    await eventually(
      async () => lines(),
      (l) => l.length >= 6,
      'six lines',
    );
    assert.deepEqual(lines(), ['db', 'api', 'web', 'db', 'api', 'web']);
    const listed = await second.request('GET', '/v1/services');
    assert.deepEqual(listed.body.items.map((s: { name: string }) => s.name).sort(), [
      'api',
      'db',
      'web',
    ]);
  });

  test('a crashing service is restarted with growing delays', async () => {
    const agent = await startTestAgent({ restartBackoffMs: 200 });
    agents.push(agent);
    const starts = join(agent.stateDir, 'starts.txt');
    await agent.request('PUT', '/v1/services/crashy', {
      command: '/bin/sh',
      args: ['-c', `date +%s%3N >> ${starts}; exit 3`],
      restart: 'on-failure',
    });
    const state = await eventually(
      () => service(agent, 'crashy'),
      (s) => s.restartCount >= 4,
      'four restarts',
      15000,
    );
    assert.equal(state.exitCode, 3);
    // The fourth restart may not have written its line yet.
    const times = await eventually(
      async () => readFileSync(starts, 'utf8').trim().split('\n').map(Number),
      (lines) => lines.length >= 5,
      'five starts recorded',
    );
    const gaps = times.slice(1, 5).map((t, i) => t - (times[i] as number));
    // Backoff 200 ms doubling: a timer never fires early, and host load only adds delay.
    gaps.forEach((gap, i) => {
      assert.ok(gap >= 200 * 2 ** i - 5, `gap ${i} is at least its backoff: ${gaps.join(', ')}`);
    });
    assert.ok((gaps[3] as number) > 2 * (gaps[0] as number), `gaps grow: ${gaps.join(', ')}`);
    await agent.request('POST', '/v1/services/crashy/stop');
  });

  test('restart policies: never leaves a failed service alone, on-failure stops after success', async () => {
    const agent = await start();
    await agent.request('PUT', '/v1/services/once', {
      command: '/bin/sh',
      args: ['-c', 'exit 2'],
      restart: 'never',
    });
    await agent.request('PUT', '/v1/services/ok', {
      command: '/bin/true',
      restart: 'on-failure',
    });
    await eventually(
      () => service(agent, 'once'),
      (s) => s.status === 'failed',
      'failed',
    );
    await eventually(
      () => service(agent, 'ok'),
      (s) => s.status === 'stopped',
      'stopped',
    );
    await sleep(300);
    assert.equal((await service(agent, 'once')).restartCount, 0);
    assert.equal((await service(agent, 'ok')).restartCount, 0);
  });

  test('a stopped service stays stopped, also across an agent restart, until started', async () => {
    const first = await start();
    await first.request('PUT', '/v1/services/worker', {
      command: '/bin/sh',
      args: ['-c', 'sleep 0.1; exec sleep 60'],
    });
    await eventually(
      () => service(first, 'worker'),
      (s) => s.status === 'running',
      'running',
    );
    const stopped = await first.request('POST', '/v1/services/worker/stop');
    assert.equal(stopped.body.status, 'stopped');
    await sleep(400);
    const still = await service(first, 'worker');
    assert.equal(still.status, 'stopped');
    assert.equal(still.pid, null);
    await first.stop();

    const second = await start(first.stateDir);
    await sleep(300);
    assert.equal((await service(second, 'worker')).status, 'stopped');
    const started = await second.request('POST', '/v1/services/worker/start');
    assert.equal(started.status, 200);
    await eventually(
      () => service(second, 'worker'),
      (s) => s.status === 'running',
      'running',
    );
    await second.request('POST', '/v1/services/worker/stop');
  });

  test('stop reaches the whole process group and SIGKILLs what ignores SIGTERM', async () => {
    const agent = await startTestAgent({ stopGraceMs: 300 });
    agents.push(agent);
    const pidFile = join(agent.stateDir, 'child.pid');
    await agent.request('PUT', '/v1/services/stubborn', {
      command: '/bin/sh',
      args: ['-c', `trap "" TERM; (trap "" TERM; sleep 60) & echo $! > ${pidFile}; wait`],
    });
    await eventually(
      () => service(agent, 'stubborn'),
      (s) => s.status === 'running',
      'running',
    );
    await sleep(200);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    const before = Date.now();
    await agent.request('POST', '/v1/services/stubborn/stop');
    assert.ok(Date.now() - before >= 250, 'waited for the grace period');
    await eventually(
      async () => isAlive(grandchild),
      (alive) => !alive,
      'grandchild gone',
    );
  });

  test('invalid definitions are rejected with the field named', async () => {
    const agent = await start();
    const sleeper = { command: 'sleep', args: ['60'] };
    const cycleA = await agent.request('PUT', '/v1/services/a', { ...sleeper });
    assert.equal(cycleA.status, 201);
    await agent.request('PUT', '/v1/services/b', { ...sleeper, dependsOn: ['a'] });
    const cycle = await agent.request('PUT', '/v1/services/a', { ...sleeper, dependsOn: ['b'] });
    assert.equal(cycle.status, 409);
    assert.equal(cycle.body.error.code, 'dependency_cycle');
    const missing = await agent.request('PUT', '/v1/services/c', { ...sleeper, dependsOn: ['zz'] });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.error.field, 'dependsOn');
    const badRestart = await agent.request('PUT', '/v1/services/d', {
      ...sleeper,
      restart: 'sometimes',
    });
    assert.equal(badRestart.status, 400);
    assert.equal(badRestart.body.error.field, 'restart');
    const noPort = await agent.request('PUT', '/v1/services/e', {
      ...sleeper,
      readiness: { type: 'http', path: '/health' },
    });
    assert.equal(noPort.status, 422);
    assert.equal(noPort.body.error.field, 'readiness.port');
    const badName = await agent.request('PUT', '/v1/services/Bad Name', sleeper);
    assert.equal(badName.status, 400);
    assert.equal(badName.body.error.field, 'name');
    await agent.request('PUT', '/v1/services/web1', { ...sleeper, httpPort: 8080 });
    const second = await agent.request('PUT', '/v1/services/web2', { ...sleeper, httpPort: 8081 });
    assert.equal(second.status, 409);
    assert.equal(second.body.error.field, 'httpPort');
    const inUse = await agent.request('DELETE', '/v1/services/a');
    assert.equal(inUse.status, 409);
    assert.equal((await agent.request('DELETE', '/v1/services/b')).status, 204);
    assert.equal((await agent.request('DELETE', '/v1/services/a')).status, 204);
    assert.equal((await agent.request('GET', '/v1/services/a')).status, 404);
  });

  test('logs are readable with tail and followable as a stream', async () => {
    const agent = await start();
    await agent.request('PUT', '/v1/services/talker', {
      command: '/bin/sh',
      args: [
        '-c',
        'for i in $(seq 1 20); do echo out-$i; echo err-$i >&2; done; sleep 0.5; echo late; sleep 0.5; echo later; exec sleep 60',
      ],
    });
    await eventually(
      () => agent.request('GET', '/v1/services/talker/logs?tail=1'),
      (r) => r.body === 'late\n',
      'the last line',
    );
    const all = (await agent.request('GET', '/v1/services/talker/logs?tail=1000')).body.split('\n');
    for (let i = 1; i <= 20; i++) {
      assert.ok(all.includes(`out-${i}`) && all.includes(`err-${i}`), `line ${i} of both streams`);
    }
    const res = await fetch(`${agent.base}/v1/services/talker/logs?tail=0&follow=1`, {
      headers: { authorization: `Bearer ${agent.token}` },
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('later')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.equal(text, 'later\n');
    await reader.cancel();
    const bad = await agent.request('GET', '/v1/services/talker/logs?tail=-1');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'tail');
  });

  test('logs rotate instead of growing without bound', async () => {
    const agent = await startTestAgent({ logFileBytes: 4096 });
    agents.push(agent);
    await agent.request('PUT', '/v1/services/chatty', {
      command: '/bin/sh',
      args: ['-c', 'for i in $(seq 1 2000); do echo line-$i; done; exec sleep 60'],
    });
    const logs = await eventually(
      () => agent.request('GET', '/v1/services/chatty/logs?tail=3'),
      (r) => typeof r.body === 'string' && r.body.includes('line-2000'),
      'last line',
    );
    assert.equal(logs.body, 'line-1998\nline-1999\nline-2000\n');
    const size = readFileSync(join(agent.stateDir, 'logs/chatty.log')).length;
    assert.ok(size <= 4096, `current log is ${size} bytes`);
  });

  test('a damaged definitions file is set aside and the agent still starts', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'snapvm-agent-test-'));
    writeFileSync(join(stateDir, 'services.json'), '{"version": 1, "services": {"x": ');
    const agent = await start(stateDir);
    assert.equal((await agent.request('GET', '/v1/health')).status, 200);
    assert.deepEqual((await agent.request('GET', '/v1/services')).body.items, []);
    assert.ok(readdirSync(stateDir).some((f) => f.startsWith('services.json.corrupt-')));
  });
});
