import type { DesiredState, MachineState } from '@snapvm/protocol';
import type { Tx } from '../db/database.js';
import { assertRequestable, assertTransition } from './state-table.js';

/** The part of a machine record that the lifecycle reads. */
export interface MachineStateRef {
  id: string;
  org_id: string;
  desired_state: DesiredState;
  observed_state: MachineState;
}

export interface TransitionCause {
  /** null for the system (the reconciler, the idle scheduler). */
  actorId: string | null;
  reason: string;
}

async function recordEvent(
  tx: Tx,
  machine: MachineStateRef,
  kind: 'desired' | 'observed',
  from: string | null,
  to: string,
  cause: TransitionCause,
): Promise<void> {
  await tx.query(
    `INSERT INTO machine_events (org_id, machine_id, actor_id, kind, from_state, to_state, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [machine.org_id, machine.id, cause.actorId, kind, from, to, cause.reason],
  );
}

/** Writes the first events of a new machine record. */
export async function recordCreation(
  tx: Tx,
  machine: MachineStateRef,
  cause: TransitionCause,
): Promise<void> {
  await recordEvent(tx, machine, 'observed', null, machine.observed_state, cause);
  await recordEvent(tx, machine, 'desired', null, machine.desired_state, cause);
}

/**
 * Applies an observed-state change through the state table and records it; this is what the
 * reconciler calls when a runtime reports progress. Returns the updated reference.
 * Lock the machine row (SELECT ... FOR UPDATE) before reading `machine` to avoid lost updates.
 */
export async function applyObservedState(
  tx: Tx,
  machine: MachineStateRef,
  to: MachineState,
  cause: TransitionCause,
): Promise<MachineStateRef> {
  if (machine.observed_state === to) return machine;
  assertTransition(machine.observed_state, to);
  await tx.query(
    `UPDATE machines SET observed_state = $2, state_changed_at = now(), updated_at = now()
      WHERE id = $1`,
    [machine.id, to],
  );
  await recordEvent(tx, machine, 'observed', machine.observed_state, to, cause);
  return { ...machine, observed_state: to };
}

/** Records what a user (or the idle scheduler) wants; the reconciler drives toward it. */
export async function requestDesiredState(
  tx: Tx,
  machine: MachineStateRef,
  desired: DesiredState,
  cause: TransitionCause,
): Promise<MachineStateRef> {
  assertRequestable(machine.observed_state, desired);
  if (machine.desired_state === desired) return machine;
  await tx.query('UPDATE machines SET desired_state = $2, updated_at = now() WHERE id = $1', [
    machine.id,
    desired,
  ]);
  await recordEvent(tx, machine, 'desired', machine.desired_state, desired, cause);
  return { ...machine, desired_state: desired };
}
