import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MachineEvent } from './api.js';
import { describeEvent } from './machine-events.js';

const tess = {
  id: '00000000-0000-4000-8000-000000000002',
  email: 'tess@example.com',
  name: 'Tess',
};

function event(change: Partial<MachineEvent>): MachineEvent {
  return {
    id: '1',
    at: '2026-01-01T12:00:00Z',
    kind: 'observed',
    from: 'started',
    to: 'stopping',
    reason: 'api',
    actor: tess,
    ...change,
  } as MachineEvent;
}

test("a user's request reads as what was asked and who asked", () => {
  const words = describeEvent(event({ kind: 'desired', from: 'started', to: 'stopped' }));
  assert.equal(words.summary, 'Stop requested');
  assert.equal(words.cause.kind, 'user');
  assert.equal(words.who, 'by Tess');
  assert.equal(words.detail, null);
});

test('observed changes carry the cause of the request that led to them', () => {
  const words = describeEvent(event({ from: 'stopping', to: 'stopped' }));
  assert.equal(words.summary, null);
  assert.equal(words.cause.label, 'user');
});

test('idle, wake and creation are told apart, with no person for idling', () => {
  const idle = describeEvent(
    event({ kind: 'desired', to: 'suspended', reason: 'idle', actor: null }),
  );
  assert.deepEqual(
    [idle.summary, idle.cause.kind, idle.who],
    ['Suspend after being idle', 'idle', null],
  );
  const wake = describeEvent(event({ kind: 'desired', to: 'started', reason: 'wake' }));
  assert.deepEqual([wake.summary, wake.cause.kind, wake.who], ['Woken up', 'wake', 'for Tess']);
  const created = describeEvent(
    event({ kind: 'desired', from: null, to: 'started', reason: 'created' }),
  );
  assert.deepEqual([created.summary, created.cause.kind], ['Created', 'created']);
});

test('a failure shows its message and a recovered sweep what the host showed', () => {
  const failed = describeEvent(
    event({ to: 'failed', reason: 'failed: start failed: agent not ready within 10 s' }),
  );
  assert.equal(failed.cause.kind, 'failed');
  assert.equal(failed.detail, 'start failed: agent not ready within 10 s');
  const adopted = describeEvent(
    event({
      from: 'starting',
      to: 'started',
      reason: 'wake; adopted: the host shows it started (recorded starting)',
    }),
  );
  assert.equal(adopted.cause.kind, 'wake');
  assert.equal(adopted.detail, 'Recovered: the host shows it started (recorded starting)');
});

test('an unknown cause is shown as recorded rather than hidden', () => {
  const words = describeEvent(event({ reason: 'restore' }));
  assert.deepEqual(words.cause, { kind: 'other', label: 'restore', title: 'restore' });
});
