import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { prepareTestDatabase, type TestDatabaseHandle } from './test-support/test-server.js';

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

interface Serve {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

const METRICS = 'metrics-token-for-the-test';

function serve(env: Record<string, string>): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, SNAPVM_LISTEN: '127.0.0.1:0', SNAPVM_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve({ child, url: match[1], output: () => output, exited });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => reject(new Error(`serve exited with ${code}: ${output}`)));
    setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 60_000).unref();
  });
}

describe('snapvm serve', () => {
  let database: TestDatabaseHandle;
  let running: Serve | null = null;
  before(async () => {
    database = await prepareTestDatabase();
  });
  after(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    await database?.cleanup();
  });

  test('prints its URL and serves health, readiness, metrics and the OpenAPI document', async () => {
    running = await serve({ ...database.env, SNAPVM_METRICS_TOKEN: METRICS });
    assert.equal((await fetch(`${running.url}/healthz`)).status, 200);
    const ready = await fetch(`${running.url}/readyz`);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    const doc = (await (await fetch(`${running.url}/api/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, { post: { requestBody?: unknown } }>;
    };
    assert.equal(doc.openapi.slice(0, 2), '3.');
    const machines = doc.paths['/api/v1/orgs/{org}/machines'];
    assert.ok(machines);
    assert.ok(machines.post.requestBody, 'request bodies come from the zod schemas');
    assert.equal((await fetch(`${running.url}/metrics`)).status, 401, 'metrics need the token');
    const wrong = { authorization: 'Bearer not-the-metrics-token' };
    assert.equal((await fetch(`${running.url}/metrics`, { headers: wrong })).status, 401);
    const metrics = await (
      await fetch(`${running.url}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } })
    ).text();
    assert.match(
      metrics,
      /snapvm_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/,
    );
    assert.match(metrics, /snapvm_http_request_duration_seconds_bucket\{/);
    assert.match(metrics, /snapvm_db_pool_total \d/);
  });

  test('SIGTERM lets an in-flight request finish, then exits cleanly', async () => {
    assert.ok(running);
    const { url, child, exited } = running;
    const body = JSON.stringify({ email: 'late@example.com', password: 'long enough', name: 'L' });
    // A request whose body is still arriving when the signal lands.
    const response = new Promise<number>((resolve, reject) => {
      const req = request(
        `${url}/api/v1/auth/signup`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 200);
    });
    assert.equal(await response, 201);
    assert.equal(await exited, 0);
    assert.match(running.output(), /SIGTERM: finishing in-flight requests/);
  });

  test('data persists across a restart', async () => {
    running = await serve(database.env);
    const login = await fetch(`${running.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'late@example.com', password: 'long enough' }),
    });
    assert.equal(login.status, 200);
    running.child.kill('SIGINT');
    assert.equal(await running.exited, 0);
  });

  test('a bad setting stops start-up with a message naming it', async () => {
    await assert.rejects(serve({ ...database.env, SNAPVM_LISTEN: 'nonsense' }), /SNAPVM_LISTEN/);
    await assert.rejects(
      serve({ ...database.env, SNAPVM_METRICS_TOKEN: 'short' }),
      /SNAPVM_METRICS_TOKEN must be at least 16/,
    );
  });

  test('without a metrics token, /metrics is off', async () => {
    running = await serve(database.env);
    const off = await fetch(`${running.url}/metrics`);
    assert.equal(off.status, 404);
    assert.match(await off.text(), /SNAPVM_METRICS_TOKEN/);
    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
  });
});
