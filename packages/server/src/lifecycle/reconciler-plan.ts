// What the reconciler does next for one machine, decided from three facts: what the user (or
// the idle monitor) wants, what the database last recorded, and what the driver sees on the
// host. Kept pure so every combination can be tested without a host.
import type { DesiredState, MachineState } from '@snapvm/protocol';
import type { ObservedState } from '../runtime/driver.js';
import { observedTransitions } from './state-table.js';

export type Step =
  /** Nothing to do: the machine is where it should be (or waits for a user, when failed). */
  | { kind: 'done' }
  /** The host agrees with a state the database has not recorded yet (adoption, recovery). */
  | { kind: 'record'; to: MachineState }
  | { kind: 'create' }
  | { kind: 'start' }
  | { kind: 'resume' }
  | { kind: 'suspend' }
  | { kind: 'stop' }
  | { kind: 'destroy' }
  | { kind: 'fail'; reason: string };

export function planStep(desired: DesiredState, recorded: MachineState, host: ObservedState): Step {
  if (recorded === 'destroyed') return { kind: 'done' };
  if (desired === 'destroyed') return { kind: 'destroy' };
  // A failure stays visible until someone asks again: the API moves failed → starting or
  // stopping on a retry, so a broken image or a full disk is not retried in a loop.
  if (recorded === 'failed') return { kind: 'done' };
  if (host === 'absent') {
    if (recorded === 'creating') return { kind: 'create' };
    return { kind: 'fail', reason: "the machine's disk is missing on this host" };
  }
  switch (desired) {
    case 'started':
      if (host === 'started') return settle(recorded, 'started');
      if (host === 'suspended') return { kind: 'resume' };
      return { kind: 'start' };
    case 'stopped':
      if (host === 'stopped') return settle(recorded, 'stopped');
      return { kind: 'stop' };
    case 'suspended':
      if (host === 'suspended') return settle(recorded, 'suspended');
      if (host === 'started') return { kind: 'suspend' };
      // Only a running machine can be frozen: boot it first (after a host restart, say).
      return { kind: 'start' };
  }
}

function settle(recorded: MachineState, to: MachineState): Step {
  return recorded === to ? { kind: 'done' } : { kind: 'record', to };
}

/**
 * The shortest chain of allowed transitions from `from` to `to` (excluding `from`), so that
 * every recorded change passes the state table: e.g. stopping → stopped → starting → started
 * when a crashed stop is followed by a start. Empty when already there; null if unreachable.
 */
export function transitionPath(from: MachineState, to: MachineState): MachineState[] | null {
  if (from === to) return [];
  const previous = new Map<MachineState, MachineState>();
  const queue: MachineState[] = [from];
  while (queue.length > 0) {
    const state = queue.shift() as MachineState;
    for (const next of observedTransitions[state]) {
      if (next === from || previous.has(next)) continue;
      // Passing through failed or destroying would record a failure or a destruction that
      // never happened.
      if (next !== to && (next === 'failed' || (next === 'destroying' && to !== 'destroyed')))
        continue;
      previous.set(next, state);
      if (next === to) {
        const path: MachineState[] = [to];
        for (let at = previous.get(to); at && at !== from; at = previous.get(at)) path.unshift(at);
        return path;
      }
      queue.push(next);
    }
  }
  return null;
}
