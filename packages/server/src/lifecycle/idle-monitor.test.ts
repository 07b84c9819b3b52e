import assert from 'node:assert/strict';
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

describe('idle machines', () => {
  let host: LifecycleHost;
  let server: RunningServer;
  let owner: ApiClient;

  before(async () => {
    // Seconds instead of minutes: new orgs' machines suspend after 1 s idle and stop after
    // 3 s (the org defaults, from the server's; the API's floor of 60 s is for requests).
    host = await prepareLifecycleHost(21, {
      SNAPVM_IDLE_SUSPEND_SECONDS: '1',
      SNAPVM_IDLE_STOP_SECONDS: '3',
    });
    server = await host.start();
    owner = await signUpOwner(server.url);
  });
  after(() => host?.cleanup());

  test('a running exec keeps a machine awake, and the API says why', async () => {
    assert.equal((await owner.post(M, { name: 'busy' })).status, 201);
    const started = await waitForMachine(owner, `${M}/busy`, (m) => m.state === 'started');
    assert.deepEqual(started.idle, {
      suspendAfterSeconds: 1,
      stopAfterSeconds: 3,
      source: { suspendAfterSeconds: 'org', stopAfterSeconds: 'org' },
    });
    const running = owner.post(`${M}/busy/exec`, { command: ['sleep', '2.5'] });
    const awake = await waitForMachine(
      owner,
      `${M}/busy`,
      (m) => (m as { activity?: { busy: boolean } }).activity?.busy === true,
      5_000,
    );
    const activity = awake.activity as { reasons: string[]; nextIdle: unknown };
    assert.ok(
      activity.reasons.some((r) => /exec/.test(r)),
      activity.reasons.join(', '),
    );
    assert.equal(activity.nextIdle, null, 'nothing is scheduled while busy');
    const result = await running;
    assert.equal(result.status, 200);
    assert.equal(result.body.exitCode, 0);
    // 2.5 s with a 1 s idle period: had the exec not counted, it would have been frozen.
    const events = (await owner.get(`${M}/busy/events`)).body;
    assert.doesNotMatch(timeline(events), /\(idle\)/);
  });

  test('an idle machine is suspended, then stopped, and tells when', async () => {
    const idle = await waitForMachine(
      owner,
      `${M}/busy`,
      (m) => (m as { activity?: { nextIdle: unknown } }).activity?.nextIdle !== null,
      5_000,
    );
    const next = (idle.activity as { nextIdle: { action: string; at: string } }).nextIdle;
    if (idle.state === 'started') assert.equal(next.action, 'suspend');
    assert.ok(Date.parse(next.at) > Date.now() - 5_000);

    await waitForMachine(owner, `${M}/busy`, (m) => m.state === 'suspended', 5_000);
    await waitForMachine(owner, `${M}/busy`, (m) => m.state === 'stopped', 6_000);
    const story = timeline((await owner.get(`${M}/busy/events`)).body);
    assert.match(story, /desired started→suspended \(idle\) · observed started→suspended \(idle\)/);
    assert.match(story, /desired suspended→stopped \(idle\)/);
  });

  test('exec wakes the idled machine, which then counts as fresh activity', async () => {
    const res = await owner.post(`${M}/busy/exec`, { command: ['hostname'] });
    assert.equal(res.status, 200);
    assert.equal(res.body.stdout, 'busy\n');
    const machine = (await owner.get(`${M}/busy`)).body;
    assert.equal(machine.state, 'started');
    assert.ok(Date.now() - Date.parse(machine.activity.lastActiveAt) < 2_000);
    await sleep(300);
    assert.equal((await owner.get(`${M}/busy`)).body.state, 'started', 'not idled at once');
  });

  test('idling can be turned off per machine', async () => {
    const off = await owner.patch(`${M}/busy`, {
      idle: { suspendAfterSeconds: null, stopAfterSeconds: null },
    });
    assert.equal(off.status, 200);
    await sleep(2_500);
    const machine = (await owner.get(`${M}/busy`)).body;
    assert.equal(machine.state, 'started');
    assert.equal(machine.activity.nextIdle, null);
  });

  test("a machine reset to inherit is idled by the org's short default, and follows it off", async () => {
    const org = await owner.get('/api/v1/orgs/acme');
    assert.deepEqual(org.body.idle, { suspendAfterSeconds: 1, stopAfterSeconds: 3 });
    const reset = await owner.patch(`${M}/busy`, {
      idle: { suspendAfterSeconds: 'inherit', stopAfterSeconds: null },
    });
    assert.equal(reset.status, 200, reset.text);
    assert.deepEqual(reset.body.idle.source, {
      suspendAfterSeconds: 'org',
      stopAfterSeconds: 'machine',
    });
    await waitForMachine(owner, `${M}/busy`, (m) => m.state === 'suspended', 5_000);
    const story = timeline((await owner.get(`${M}/busy/events`)).body);
    assert.equal(story.match(/desired started→suspended \(idle\)/g)?.length, 2, story);

    // Turning the org's default off reaches the machine with no change to the machine.
    const off = await owner.patch('/api/v1/orgs/acme', { idle: { suspendAfterSeconds: null } });
    assert.equal(off.status, 200, off.text);
    assert.equal((await owner.post(`${M}/busy/exec`, { command: ['true'] })).status, 200);
    await sleep(2_500);
    const machine = (await owner.get(`${M}/busy`)).body;
    assert.equal(machine.state, 'started');
    assert.equal(machine.idle.suspendAfterSeconds, null);
    assert.equal(machine.activity.nextIdle, null);
  });
});
