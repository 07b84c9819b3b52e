import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, backoffDelay, nextPollDelay, RECONNECT_BACKOFF } from './backoff.js';

const noJitter = () => 0;
const fullJitter = () => 1;

test('reconnect delays double from the first delay up to the cap', () => {
  const delays = Array.from({ length: 8 }, (_, attempt) =>
    backoffDelay(attempt, RECONNECT_BACKOFF, noJitter),
  );
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  assert.equal(backoffDelay(10_000, RECONNECT_BACKOFF, noJitter), 15000);
});

test('jitter only ever shortens a delay, by at most its share', () => {
  assert.equal(backoffDelay(3, RECONNECT_BACKOFF, fullJitter), 2800);
  for (let i = 0; i < 100; i++) {
    const delay = backoffDelay(2, RECONNECT_BACKOFF);
    assert.ok(delay >= 1400 && delay <= 2000, String(delay));
  }
});

test('a success resets the backoff to its first delay', () => {
  const backoff = new Backoff(RECONNECT_BACKOFF, noJitter);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [500, 1000, 2000]);
  assert.equal(backoff.failures, 3);
  backoff.reset();
  assert.equal(backoff.next(), 500);
});

test('polling is fast while a machine changes state and slow when it is steady', () => {
  assert.equal(nextPollDelay({ transitional: true, failures: 0, hidden: false }), 1000);
  assert.equal(nextPollDelay({ transitional: false, failures: 0, hidden: false }), 5000);
  assert.equal(nextPollDelay({ transitional: true, failures: 0, hidden: true }), 30000);
});

test('failed polls back off to a minute', () => {
  const delays = [1, 2, 3, 6, 20].map((failures) =>
    nextPollDelay({ transitional: true, failures, hidden: false }, noJitter),
  );
  assert.deepEqual(delays, [2000, 4000, 8000, 60000, 60000]);
});
