import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { eventually, sleep } from './testing/agent-fixture.js';

// The bundle is what machines run, so it is tested as a separate process over a unix socket.
const bundle = fileURLToPath(new URL('./bundle/agent.mjs', import.meta.url));

function call(socketPath: string, token: string, method: string, path: string, body?: unknown) {
  // biome-ignore lint/suspicious/noExplicitAny: tests read responses by shape and assert each field they use
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
      },
    );
    req.once('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('the bundled agent process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapvm-agent-main-'));
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (env: Record<string, string>) => {
    assert.ok(existsSync(bundle), `${bundle} is missing: run npm run build first`);
    const child = spawn(process.execPath, [bundle], {
      env: { PATH: process.env.PATH ?? '', SNAPVM_AGENT_LOG: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    return { child, exited, stderr: () => stderr };
  };

  test('serves on a unix socket and shuts down cleanly on SIGTERM', async () => {
    const token = 'bundle-test-token-0123456789';
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const socketPath = join(dir, 'agent.sock');
    const { child, exited } = run({
      SNAPVM_AGENT_SOCKET: socketPath,
      SNAPVM_AGENT_TOKEN_FILE: tokenFile,
      SNAPVM_AGENT_STATE_DIR: join(dir, 'state'),
    });
    await eventually(async () => existsSync(socketPath), Boolean, 'socket file');
    const health = await call(socketPath, token, 'GET', '/v1/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.pid, child.pid);
    assert.equal((await call(socketPath, 'wrong', 'GET', '/v1/health')).status, 401);

    const put = await call(socketPath, token, 'PUT', '/v1/services/sleeper', {
      command: 'sleep',
      args: ['60'],
    });
    assert.equal(put.status, 201);
    const service = await eventually(
      () => call(socketPath, token, 'GET', '/v1/services/sleeper'),
      (r) => r.body.status === 'running',
      'service running',
    );
    const session = await call(socketPath, token, 'POST', '/v1/sessions', {
      command: ['/bin/sh', '-c', 'echo $TERM; sleep 60'],
    });
    assert.equal(session.status, 201);
    const execPid = join(dir, 'exec.pid');
    void call(socketPath, token, 'POST', '/v1/exec', {
      command: ['/bin/sh', '-c', `echo $$ > ${execPid}; exec sleep 60`],
    }).catch(() => null);
    await sleep(100);
    // A snapshot comes from the screen-model worker, which the bundle starts from itself.
    const ws = new WebSocket(`ws+unix://${socketPath}:/v1/sessions/${session.body.id}/attach`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const attached = await new Promise<{ mode: string; snapshotBytes: number }>(
      (resolve, reject) => {
        ws.once('message', (data) => resolve(JSON.parse(String(data))));
        ws.once('error', reject);
      },
    );
    assert.equal(attached.mode, 'snapshot');
    assert.ok(attached.snapshotBytes > 0);
    ws.close();

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(isAlive(service.body.pid), false, 'the service was stopped');
    assert.equal(isAlive(session.body.pid), false, 'the session was ended');
    assert.equal(isAlive(Number(readFileSync(execPid, 'utf8'))), false, 'the exec was killed');
    assert.equal(existsSync(socketPath), false, 'the socket file is removed');
  });

  test('waits on the start gate before it starts services or listens, and keeps it from children', async () => {
    const token = 'gate-test-token-0123456789';
    const tokenFile = join(dir, 'token-gate');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const socketPath = join(dir, 'gate.sock');
    const state = join(dir, 'state-gate');
    const started = join(dir, 'gate-service-started');
    // A service persisted by an earlier boot: it must not start before the gate opens.
    mkdirSync(state, { recursive: true });
    writeFileSync(
      join(state, 'services.json'),
      JSON.stringify({
        version: 1,
        services: {
          marker: {
            definition: {
              command: '/bin/sh',
              // fd 3 is the agent's gate: a service must not have it (or anything) there.
              args: [
                '-c',
                `readlink /proc/$$/fd/3 > ${started} || echo none > ${started}; exec sleep 60`,
              ],
            },
            stopped: false,
          },
        },
      }),
    );
    const child = spawn(process.execPath, [bundle], {
      env: {
        PATH: process.env.PATH ?? '',
        SNAPVM_AGENT_LOG: 'silent',
        SNAPVM_AGENT_SOCKET: socketPath,
        SNAPVM_AGENT_TOKEN_FILE: tokenFile,
        SNAPVM_AGENT_STATE_DIR: state,
        SNAPVM_AGENT_START_GATE: '3',
      },
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    // Long enough to load the bundle; still shut.
    await sleep(1500);
    assert.equal(existsSync(socketPath), false, 'no socket before the gate opens');
    assert.equal(existsSync(started), false, 'no service before the gate opens');
    (child.stdio[3] as NodeJS.WritableStream).end('go\n');
    await eventually(async () => existsSync(socketPath), Boolean, 'socket file');
    assert.equal((await call(socketPath, token, 'GET', '/v1/health')).status, 200);
    const fd3 = await eventually(
      async () => (existsSync(started) ? readFileSync(started, 'utf8') : ''),
      Boolean,
      'the service started',
    );
    assert.equal(fd3.trim(), 'none', 'the gate is closed before children are spawned');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  test('refuses to start without a token file, saying why', async () => {
    const { exited, stderr } = run({ SNAPVM_AGENT_LISTEN: '127.0.0.1:0' });
    assert.equal(await exited, 2);
    assert.match(stderr(), /SNAPVM_AGENT_TOKEN_FILE/);
    // The bundle was made by this node: V8 takes its code cache (agent.mjs says when not).
    assert.doesNotMatch(stderr(), /code cache/);
  });

  test('works as PID 1 of its own PID namespace and stops on SIGTERM', async () => {
    const token = 'pid-one-test-token-0123456789';
    const tokenFile = join(dir, 'token-pid1');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const socketPath = join(dir, 'pid1.sock');
    const child = spawn(
      'unshare',
      ['--pid', '--fork', '--kill-child', '--mount-proc', process.execPath, bundle],
      {
        env: {
          PATH: process.env.PATH ?? '',
          SNAPVM_AGENT_LOG: 'silent',
          SNAPVM_AGENT_SOCKET: socketPath,
          SNAPVM_AGENT_TOKEN_FILE: tokenFile,
          SNAPVM_AGENT_STATE_DIR: join(dir, 'state-pid1'),
        },
        stdio: 'ignore',
      },
    );
    children.push(child);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    await eventually(async () => existsSync(socketPath), Boolean, 'socket file');
    const health = await call(socketPath, token, 'GET', '/v1/health');
    assert.equal(health.body.pid, 1);
    const exec = await call(socketPath, token, 'POST', '/v1/exec', {
      command: ['echo', 'as-init'],
    });
    assert.equal(exec.body.stdout, 'as-init\n');
    // The agent's PID on this side of the namespace is unshare's only child.
    const agentPid = Number(
      readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim(),
    );
    process.kill(agentPid, 'SIGTERM');
    assert.equal(await exited, 0);
  });
});
