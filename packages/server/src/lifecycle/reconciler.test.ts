import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningServer } from '../server.js';
import type { ApiClient } from '../test-support/test-server.js';
import {
  type LifecycleHost,
  prepareLifecycleHost,
  signUpOwner,
  timeline,
  waitForMachine,
} from './reconciler-test-support.js';

const M = '/api/v1/orgs/acme/machines';

describe('machines that really run', () => {
  let host: LifecycleHost;
  let server: RunningServer;
  let owner: ApiClient;

  const exec = async (name: string, script: string) => {
    const res = await owner.post(`${M}/${name}/exec`, { command: ['sh', '-c', script] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exitCode, 0, res.text);
    return res.body.stdout as string;
  };
  const machineId = async (name: string) => (await owner.get(`${M}/${name}`)).body.id as string;
  const events = async (name: string) => (await owner.get(`${M}/${name}/events?limit=100`)).body;

  before(async () => {
    host = await prepareLifecycleHost(20);
    server = await host.start();
    owner = await signUpOwner(server.url);
  });
  after(() => host?.cleanup());

  test('a new machine starts by itself and exec runs in it under its own hostname', async () => {
    const created = await owner.post(M, { name: 'alpha' });
    assert.equal(created.status, 201);
    assert.equal(created.body.state, 'creating');
    await waitForMachine(owner, `${M}/alpha`, (m) => m.state === 'started');
    assert.equal(await exec('alpha', 'hostname'), 'alpha\n');
    const story = timeline(await events('alpha'));
    assert.match(story, /observed creating→starting \(created\) · observed starting→started/);
  });

  test('files survive stop and start; exec wakes a stopped machine', async () => {
    await exec('alpha', 'echo kept > /root/note');
    const id = await machineId('alpha');
    const stop = await owner.post(`${M}/alpha/stop`);
    assert.equal(stop.status, 202);
    await waitForMachine(owner, `${M}/alpha`, (m) => m.state === 'stopped');
    assert.equal((await host.driver().status(id)).state, 'stopped', 'no process is left');

    assert.equal(await exec('alpha', 'cat /root/note'), 'kept\n');
    const machine = await owner.get(`${M}/alpha`);
    assert.equal(machine.body.state, 'started');
    assert.match(
      timeline(await events('alpha')),
      /desired started→stopped \(api\) · observed started→stopping \(api\) · observed stopping→stopped \(api\) · desired stopped→started \(wake\)/,
    );
  });

  test('a process keeps counting across suspend and resume', async () => {
    await exec(
      'alpha',
      "setsid sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done' >/dev/null 2>&1 < /dev/null &",
    );
    await sleep(300);
    // -o, the oldest: the loop forks for each sleep, and a child caught before its exec
    // carries the loop's command line too.
    const pid = (await exec('alpha', 'pgrep -o -f "[t]mp/count"')).trim();
    const before = Number(await exec('alpha', 'cat /tmp/count'));
    assert.equal(await owner.post(`${M}/alpha/suspend`).then((r) => r.status), 202);
    await waitForMachine(owner, `${M}/alpha`, (m) => m.state === 'suspended');
    const id = await machineId('alpha');
    assert.equal((await host.driver().status(id)).state, 'suspended');
    const frozenAt = Number(
      await host
        .driver()
        .exec(id, ['cat', '/tmp/count'])
        .catch(() => NaN),
    );
    assert.ok(Number.isNaN(frozenAt), 'the driver refuses exec into a frozen machine');
    await sleep(1500);
    // exec resumes it (a warm wake). Frozen for 1.5 s, the counter (20 a second) barely moved.
    const first = Number(await exec('alpha', 'cat /tmp/count'));
    assert.ok(first - before < 12, `no CPU while suspended: ${before} then ${first}`);
    await sleep(300);
    const later = Number(await exec('alpha', 'cat /tmp/count'));
    assert.ok(later > first, `still counting: ${first} then ${later}`);
    assert.equal((await exec('alpha', 'pgrep -o -f "[t]mp/count"')).trim(), pid, 'same process');
    assert.match(timeline(await events('alpha')), /desired suspended→started \(wake\)/);
  });

  test('a restarted server adopts the running machine: same processes, files intact', async () => {
    const id = await machineId('alpha');
    const pid = (await exec('alpha', 'pgrep -o -f "[t]mp/count"')).trim();
    const before = (await events('alpha')).items.length;
    await server.stop();
    server = await host.start();
    owner = new (owner.constructor as typeof ApiClient)(server.url, owner.credentials);
    await sleep(1500);
    const machine = await owner.get(`${M}/alpha`);
    assert.equal(machine.body.state, 'started');
    assert.equal(await exec('alpha', 'cat /root/note'), 'kept\n');
    assert.equal((await exec('alpha', 'pgrep -o -f "[t]mp/count"')).trim(), pid, 'not rebooted');
    assert.equal((await events('alpha')).items.length, before, 'nothing to record');
    assert.deepEqual(
      (await host.driver().list()).map((m) => m.id),
      [id],
      'one sandbox, not two',
    );
  });

  test("another server's lease keeps this server's hands off the machine", async () => {
    const id = await machineId('alpha');
    await server.db.asSystem((tx) =>
      tx.query(
        `UPDATE machines SET lease_owner = 'another-server',
                lease_expires_at = now() + interval '2 seconds' WHERE id = $1`,
        [id],
      ),
    );
    assert.equal((await owner.post(`${M}/alpha/stop`)).status, 202);
    await sleep(1200);
    const held = await owner.get(`${M}/alpha`);
    assert.equal(held.body.state, 'started', 'untouched while the lease is held');
    assert.equal(held.body.desiredState, 'stopped');
    // Once it expires (its holder "crashed"), the sweep takes over.
    await waitForMachine(owner, `${M}/alpha`, (m) => m.state === 'stopped', 10_000);
  });

  test('a failed start records why, and starting again retries it', async () => {
    const agent = join(host.setup.options.agentDir, 'agent.mjs');
    renameSync(agent, `${agent}.away`);
    try {
      assert.equal((await owner.post(M, { name: 'flaky' })).status, 201);
      await waitForMachine(owner, `${M}/flaky`, (m) => m.state === 'failed');
    } finally {
      renameSync(`${agent}.away`, agent);
    }
    const failed = (await events('flaky')).items.at(-1);
    assert.equal(failed.to, 'failed');
    assert.match(failed.reason, /^failed: start failed: .*agent/);
    // Left alone: no retry loop behind the user's back.
    await sleep(1200);
    assert.equal((await owner.get(`${M}/flaky`)).body.state, 'failed');

    assert.equal((await owner.post(`${M}/flaky/start`)).status, 202);
    await waitForMachine(owner, `${M}/flaky`, (m) => m.state === 'started');
    assert.equal(await exec('flaky', 'hostname'), 'flaky\n');
  });

  test('a machine on a runtime this server lacks fails with a clear reason', async () => {
    assert.equal((await owner.post(M, { name: 'remote', runtime: 'sprites' })).status, 201);
    await waitForMachine(owner, `${M}/remote`, (m) => m.state === 'failed');
    const failed = (await events('remote')).items.at(-1);
    assert.match(failed.reason, /sprites runtime is not available on this server yet/);
    const res = await owner.post(`${M}/remote/exec`, { command: ['true'] });
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'machine_unavailable');
  });

  test('exec names the bad field, and a missing command is a 422', async () => {
    const bad = await owner.post(`${M}/flaky/exec`, { command: [] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /command/);
    const missing = await owner.post(`${M}/flaky/exec`, { command: ['no-such-program'] });
    assert.equal(missing.status, 422, missing.text);
  });

  test("at start-up a destroyed machine's leftover sandbox goes, an unknown one stays", async () => {
    assert.equal((await owner.post(M, { name: 'ghost' })).status, 201);
    await waitForMachine(owner, `${M}/ghost`, (m) => m.state === 'started');
    const ghost = await machineId('ghost');
    const size = { cpu: 1, memoryMiB: 256, diskGiB: 1, pids: 64 };
    await host.driver().create({ id: 'stray', name: 'stray', size });
    // As if the record had been destroyed while this host was unreachable.
    await server.db.asSystem((tx) =>
      tx.query(
        `UPDATE machines SET observed_state = 'destroyed', desired_state = 'destroyed'
          WHERE id = $1`,
        [ghost],
      ),
    );
    await server.stop();
    server = await host.start();
    owner = new (owner.constructor as typeof ApiClient)(server.url, owner.credentials);
    for (let i = 0; i < 400 && (await host.driver().status(ghost)).state !== 'absent'; i++)
      await sleep(25);
    assert.equal((await host.driver().status(ghost)).state, 'absent');
    assert.equal((await host.driver().status('stray')).state, 'stopped');
  });

  test('a machine destroyed while it starts ends destroyed, with no failure on the way', async () => {
    assert.equal((await owner.post(M, { name: 'racer' })).status, 201);
    const id = await machineId('racer');
    await waitForMachine(owner, `${M}/racer`, (m) => m.state === 'starting', 5_000);
    const timelineBefore = timeline(await events('racer'));
    assert.equal((await owner.delete(`${M}/racer`)).status, 202);
    for (let i = 0; i < 400 && (await host.driver().status(id)).state !== 'absent'; i++)
      await sleep(25);
    assert.equal((await host.driver().status(id)).state, 'absent');
    const eventsOf = () =>
      server.db.asSystem((tx) =>
        tx.query<{ to_state: string; reason: string }>(
          'SELECT to_state, reason FROM machine_events WHERE machine_id = $1 ORDER BY id',
          [id],
        ),
      );
    let reasons = await eventsOf();
    for (let i = 0; i < 100 && reasons.at(-1)?.to_state !== 'destroyed'; i++) {
      await sleep(25);
      reasons = await eventsOf();
    }
    assert.ok(
      !reasons.some((e) => e.to_state === 'failed'),
      `${timelineBefore} … ${JSON.stringify(reasons)}`,
    );
    assert.equal(reasons.at(-1)?.to_state, 'destroyed');
  });

  test('destroy removes everything from the host', async () => {
    const id = await machineId('flaky');
    assert.equal((await owner.delete(`${M}/flaky`)).status, 202);
    // The reconciler removes the sandbox first and records `destroyed` after, so wait for
    // both rather than reading the API in between.
    for (let i = 0; i < 400; i++) {
      const gone = (await host.driver().status(id)).state === 'absent';
      if (gone && (await owner.get(`${M}/flaky`)).status === 404) break;
      await sleep(25);
    }
    assert.equal((await host.driver().status(id)).state, 'absent');
    assert.equal((await owner.get(`${M}/flaky`)).status, 404);
  });
});
