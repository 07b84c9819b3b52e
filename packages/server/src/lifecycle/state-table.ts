import type { DesiredState, MachineState } from '@snapvm/protocol';
import { ConflictError } from '../errors.js';

/**
 * The machine lifecycle (DESIGN.md): every observed-state change the reconciler (or the API)
 * may make. Anything not listed here is refused.
 */
export const observedTransitions: Readonly<Record<MachineState, readonly MachineState[]>> = {
  creating: ['starting', 'started', 'stopped', 'destroying', 'failed'],
  starting: ['started', 'stopping', 'destroying', 'failed'],
  started: ['stopping', 'suspended', 'starting', 'destroying', 'failed'],
  suspended: ['started', 'stopping', 'destroying', 'failed'],
  stopping: ['stopped', 'destroying', 'failed'],
  stopped: ['starting', 'destroying', 'failed'],
  destroying: ['destroyed', 'failed'],
  destroyed: [],
  failed: ['starting', 'stopping', 'stopped', 'destroying'],
};

/** From which observed states a user may ask for each desired state. */
const requestableFrom: Readonly<Record<DesiredState, readonly MachineState[]>> = {
  started: ['creating', 'starting', 'started', 'suspended', 'stopping', 'stopped', 'failed'],
  suspended: ['starting', 'started', 'suspended'],
  stopped: ['creating', 'starting', 'started', 'suspended', 'stopping', 'stopped', 'failed'],
  destroyed: [
    'creating',
    'starting',
    'started',
    'suspended',
    'stopping',
    'stopped',
    'destroying',
    'failed',
  ],
};

const verbs: Record<DesiredState, string> = {
  started: 'start',
  suspended: 'suspend',
  stopped: 'stop',
  destroyed: 'destroy',
};

export function canTransition(from: MachineState, to: MachineState): boolean {
  return observedTransitions[from].includes(to);
}

export function assertTransition(from: MachineState, to: MachineState): void {
  if (!canTransition(from, to))
    throw new ConflictError(
      `The machine is ${from} and cannot go to ${to} from there.`,
      'invalid_transition',
    );
}

export function canRequest(observed: MachineState, desired: DesiredState): boolean {
  return requestableFrom[desired].includes(observed);
}

/** A 409 naming the current state when `desired` can't be asked for now. */
export function assertRequestable(observed: MachineState, desired: DesiredState): void {
  if (!canRequest(observed, desired))
    throw new ConflictError(
      `Cannot ${verbs[desired]} a machine that is ${observed}.`,
      'invalid_transition',
    );
}
