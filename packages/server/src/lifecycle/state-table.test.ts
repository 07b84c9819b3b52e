import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type MachineState, machineStateSchema } from '@snapvm/protocol';
import {
  assertRequestable,
  assertTransition,
  canRequest,
  canTransition,
  observedTransitions,
} from './state-table.js';

const states = machineStateSchema.options;

test('every state has a row and every target is a known state', () => {
  assert.deepEqual(Object.keys(observedTransitions).sort(), [...states].sort());
  for (const targets of Object.values(observedTransitions))
    for (const target of targets) assert.ok(states.includes(target), target);
});

test('destroyed is final and every other state can reach destroyed', () => {
  assert.deepEqual(observedTransitions.destroyed, []);
  for (const state of states) {
    if (state === 'destroyed') continue;
    const seen = new Set<MachineState>([state]);
    const queue: MachineState[] = [state];
    while (queue.length) {
      for (const next of observedTransitions[queue.shift() ?? 'destroyed'])
        if (!seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
    }
    assert.ok(seen.has('destroyed'), `${state} cannot reach destroyed`);
  }
});

test('a stopped machine cannot be suspended, and the refusal names its state', () => {
  assert.equal(canRequest('stopped', 'suspended'), false);
  assert.throws(() => assertRequestable('stopped', 'suspended'), {
    statusCode: 409,
    message: /suspend a machine that is stopped/,
  });
});

test('a destroyed machine accepts no requests and no transitions', () => {
  for (const desired of ['started', 'stopped', 'suspended', 'destroyed'] as const)
    assert.equal(canRequest('destroyed', desired), false, desired);
  for (const state of states) assert.equal(canTransition('destroyed', state), false);
  assert.throws(() => assertTransition('destroyed', 'starting'), /is destroyed/);
});

test('the normal lifecycle is allowed step by step', () => {
  const path = ['creating', 'starting', 'started', 'suspended', 'started', 'stopping', 'stopped'];
  for (let i = 1; i < path.length; i++)
    assert.doesNotThrow(() => assertTransition(path[i - 1] as 'creating', path[i] as 'creating'));
  assert.equal(canTransition('stopped', 'suspended'), false);
});
