import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planStep, transitionPath } from './reconciler-plan.js';
import { canTransition } from './state-table.js';

describe('reconciler plan', () => {
  test('a new machine is created, then started', () => {
    assert.deepEqual(planStep('started', 'creating', 'absent'), { kind: 'create' });
    assert.deepEqual(planStep('started', 'creating', 'stopped'), { kind: 'start' });
    assert.deepEqual(planStep('started', 'starting', 'started'), { kind: 'record', to: 'started' });
    assert.deepEqual(planStep('started', 'started', 'started'), { kind: 'done' });
  });

  test('a machine that died on its own is started again while it should run', () => {
    assert.deepEqual(planStep('started', 'started', 'stopped'), { kind: 'start' });
    assert.deepEqual(planStep('started', 'started', 'broken'), { kind: 'start' });
  });

  test('leftovers of a crash are cleaned up by whichever step comes next', () => {
    assert.deepEqual(planStep('stopped', 'stopping', 'broken'), { kind: 'stop' });
    assert.deepEqual(planStep('started', 'starting', 'broken'), { kind: 'start' });
  });

  test('suspend freezes a running machine and boots a stopped one first', () => {
    assert.deepEqual(planStep('suspended', 'started', 'started'), { kind: 'suspend' });
    assert.deepEqual(planStep('suspended', 'started', 'stopped'), { kind: 'start' });
    assert.deepEqual(planStep('started', 'suspended', 'suspended'), { kind: 'resume' });
  });

  test('a failed machine waits for someone to ask again, except to be destroyed', () => {
    assert.deepEqual(planStep('started', 'failed', 'stopped'), { kind: 'done' });
    assert.deepEqual(planStep('destroyed', 'failed', 'stopped'), { kind: 'destroy' });
  });

  test('a machine whose disk vanished fails instead of being silently recreated empty', () => {
    const step = planStep('started', 'stopped', 'absent');
    assert.equal(step.kind, 'fail');
  });

  test('transition paths follow the state table and never pass through failed', () => {
    for (const [from, to] of [
      ['stopping', 'started'],
      ['starting', 'suspended'],
      ['creating', 'destroyed'],
      ['suspended', 'stopped'],
    ] as const) {
      const path = transitionPath(from, to);
      assert.ok(path, `${from} → ${to}`);
      assert.equal(path.at(-1), to);
      let at: string = from;
      for (const next of path) {
        assert.ok(canTransition(at as never, next), `${at} → ${next}`);
        assert.notEqual(next === to ? null : next, 'failed');
        at = next;
      }
    }
    assert.deepEqual(transitionPath('started', 'started'), []);
    assert.equal(transitionPath('destroyed', 'started'), null);
  });
});
