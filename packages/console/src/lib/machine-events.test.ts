import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MachineEvent } from './api.js';
import { describeEvent, readEventLog } from './machine-events.js';

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

test('the event log follows the pages to the newest and a refresh re-reads only the last page', async () => {
  const all = Array.from({ length: 5 }, (_, i) => event({ id: String(i + 1) }));
  const reads: Array<string | null> = [];
  // The API's paging: two per page, a cursor only when more follow.
  const fetchPage = async (cursor: string | null) => {
    reads.push(cursor);
    const start = cursor ? Number(cursor) : 0;
    const items = all.slice(start, start + 2);
    return { items, nextCursor: start + 2 < all.length ? String(start + 2) : null };
  };
  const first = await readEventLog(fetchPage, null);
  assert.deepEqual(
    first.events.map((e) => e.id),
    ['1', '2', '3', '4', '5'],
  );
  assert.deepEqual(reads, [null, '2', '4']);

  all.push(event({ id: '6' }), event({ id: '7' }));
  reads.length = 0;
  const second = await readEventLog(fetchPage, first);
  assert.deepEqual(reads, ['4', '6'], 'starts at the last page it had read');
  assert.deepEqual(
    second.events.map((e) => e.id),
    ['1', '2', '3', '4', '5', '6', '7'],
  );
});
