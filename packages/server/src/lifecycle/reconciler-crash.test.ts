import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../test-support/test-server.js';
import {
  type LifecycleHost,
  prepareLifecycleHost,
  signUpOwner,
  timeline,
  waitForMachine,
} from './reconciler-test-support.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const M = '/api/v1/orgs/acme/machines';

/** `snapvm serve` as its own process, so it can be killed with SIGKILL. */
function serve(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve({ child, url: match[1] });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
    setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 60_000).unref();
  });
}

describe('a server killed mid-start', () => {
  let host: LifecycleHost;
  let child: ChildProcess | undefined;

  before(async () => {
    host = await prepareLifecycleHost(22);
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await host?.cleanup();
  });

  test('the restarted server brings the machine to a clean state: adopted, not duplicated', async () => {
    const first = await serve(host.env);
    child = first.child;
    const owner = await signUpOwner(first.url);
    assert.equal((await owner.post(M, { name: 'phoenix' })).status, 201);
    // Kill it while the machine is between "starting" and "started": sandbox half made.
    const seen = await waitForMachine(owner, `${M}/phoenix`, (m) => m.state === 'starting', 10_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child?.once('exit', resolve));
    const id = seen.id as string;
    const left = await host.driver().status(id);
    assert.notEqual(left.state, 'absent', 'the crash left something behind to recover');

    const server = await host.start();
    const again = new ApiClient(server.url, owner.credentials);
    await waitForMachine(again, `${M}/phoenix`, (m) => m.state === 'started', 20_000);
    const res = await again.post(`${M}/phoenix/exec`, {
      command: ['sh', '-c', 'hostname; pgrep -c -x tini; pgrep -c -x node'],
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stdout, 'phoenix\n1\n1\n', 'one init and one agent in the machine');
    assert.deepEqual(
      (await host.driver().list()).map((m) => [m.id, m.state]),
      [[id, 'started']],
      'one sandbox on the host',
    );
    const story = timeline((await again.get(`${M}/phoenix/events?limit=100`)).body);
    assert.doesNotMatch(story, /failed/, story);
    assert.match(story, /observed starting→started/);
  });
});
