import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countdown, describeActivity, reasonInWords } from './activity.js';
import type { Machine } from './api.js';

const now = Date.parse('2026-01-01T12:00:00Z');
const at = (offsetSeconds: number) => new Date(now + offsetSeconds * 1000).toISOString();

function machine(change: Partial<Machine>): Machine {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'dev',
    state: 'started',
    desiredState: 'started',
    size: 'small',
    limits: { cpu: 1, memoryMiB: 1024, diskGiB: 5, pids: 512 },
    region: 'local',
    runtime: 'local',
    owner: null,
    httpPort: 8080,
    urlAccess: 'private',
    idle: {
      suspendAfterSeconds: 300,
      stopAfterSeconds: 3600,
      source: { suspendAfterSeconds: 'org', stopAfterSeconds: 'org' },
    },
    urls: { app: 'http://dev--org.localhost' },
    createdAt: at(-3600),
    updatedAt: at(-60),
    ...change,
  };
}

test("the agent's reasons read as plain words, with singular and plural", () => {
  assert.equal(reasonInWords('1 terminal client(s) attached'), '1 terminal attached');
  assert.equal(reasonInWords('2 terminal client(s) attached'), '2 terminals attached');
  assert.equal(reasonInWords('1 exec(s) running'), '1 command running');
  assert.equal(reasonInWords('3 proxied connection(s) open'), '3 open connections to its URL');
  assert.equal(reasonInWords('something new'), 'something new');
});

test('countdowns round up to whole minutes and say when the time has come', () => {
  assert.equal(countdown(45_000), 'in 45 s');
  assert.equal(countdown(200_000), 'in 4 min');
  assert.equal(countdown(3_600_000), 'in 1 h');
  assert.equal(countdown(7_500_000), 'in 2 h 5 min');
  assert.equal(countdown(0), 'any moment now');
  assert.equal(countdown(-5_000), 'any moment now');
});

test('a busy machine says what keeps it awake and what idling does once that ends', () => {
  const summary = describeActivity(
    machine({
      activity: {
        busy: true,
        reasons: ['1 terminal client(s) attached', '1 exec(s) running'],
        lastActiveAt: at(0),
        checkedAt: at(-3),
        nextIdle: null,
      },
    }),
    now,
  );
  assert.equal(summary.tone, 'awake');
  assert.equal(summary.headline, 'Awake: 1 terminal attached, 1 command running');
  assert.equal(summary.next, 'will suspend 5 min after that ends');
  assert.equal(summary.freshness, 'checked just now');
});

test('an idle machine counts down to its next idle step', () => {
  const summary = describeActivity(
    machine({
      activity: {
        busy: false,
        reasons: [],
        lastActiveAt: at(-60),
        checkedAt: at(-8),
        nextIdle: { action: 'suspend', at: at(240) },
      },
    }),
    now,
  );
  assert.equal(summary.headline, 'Awake: nothing attached or running');
  assert.equal(summary.next, 'will suspend in 4 min if idle');
  assert.equal(summary.freshness, 'checked 8 s ago · last active 1 min ago');
});

test('with idling off the machine says it stays awake', () => {
  const summary = describeActivity(
    machine({
      idle: {
        suspendAfterSeconds: null,
        stopAfterSeconds: null,
        source: { suspendAfterSeconds: 'machine', stopAfterSeconds: 'org' },
      },
      activity: { busy: false, reasons: [], lastActiveAt: at(-5), checkedAt: null, nextIdle: null },
    }),
    now,
  );
  assert.equal(summary.headline, 'Awake');
  assert.equal(summary.next, 'idling is off: it stays awake until you suspend or stop it');
});

test('a suspended machine says how it wakes and when idling stops it', () => {
  const summary = describeActivity(
    machine({
      state: 'suspended',
      desiredState: 'suspended',
      activity: {
        busy: false,
        reasons: [],
        lastActiveAt: at(-600),
        checkedAt: at(-600),
        nextIdle: { action: 'stop', at: at(3000) },
      },
    }),
    now,
  );
  assert.equal(summary.tone, 'asleep');
  assert.equal(summary.headline, 'Suspended — wakes when you open a terminal or its URL');
  assert.equal(summary.next, 'will stop in 50 min unless something wakes it');
});

test('stopped, changing and failed machines say so without activity', () => {
  assert.match(describeActivity(machine({ state: 'stopped' }), now).headline, /^Stopped — starts/);
  assert.deepEqual(describeActivity(machine({ state: 'stopping' }), now), {
    tone: 'changing',
    headline: 'Stopping…',
    next: null,
    freshness: null,
  });
  assert.equal(describeActivity(machine({ state: 'failed' }), now).tone, 'failed');
});
