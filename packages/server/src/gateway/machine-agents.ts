// How the API routes of the gateway (sessions, services) reach a machine's agent: either
// waking the machine first, or only if it is already awake (reads that must not wake it,
// or every console page view would keep machines running). Also keeps the agent's services
// in step with the control plane each time a machine becomes started.
import type { Machine } from '@snapvm/protocol';
import type { FastifyBaseLogger } from 'fastify';
import {
  AgentClient,
  AgentRequestError,
  AgentUnreachableError,
} from '../agent-client/agent-client.js';
import type { Database } from '../db/database.js';
import { ApiError, UnprocessableError } from '../errors.js';
import type { MachineLifecycle } from '../lifecycle/machine-lifecycle.js';
import type { StateChange } from '../lifecycle/reconciler.js';
import { MachineUnavailableError } from '../machines/machine-waker.js';
import { listDefinitions } from '../services/service-store.js';
import { syncAgentServices } from '../services/service-sync.js';

export class MachineAgents {
  private readonly syncing = new Map<string, Promise<void>>();

  constructor(
    readonly lifecycle: MachineLifecycle | null,
    private readonly db: Database,
    private readonly log: FastifyBaseLogger,
  ) {
    lifecycle?.reconciler.on('state', (change: StateChange) => {
      if (change.state === 'started') void this.syncServices(change.id);
    });
  }

  /** Wakes the machine (single-flight) and returns a client for its agent. */
  async wake(
    machine: { id: string },
    actorId: string | null,
    signal?: AbortSignal,
  ): Promise<AgentClient> {
    if (!this.lifecycle)
      throw new MachineUnavailableError(
        'This server does not run machines (SNAPVM_LIFECYCLE=off).',
      );
    const endpoint = await this.lifecycle.waker.wake(machine, {
      actorId,
      ...(signal ? { signal } : {}),
    });
    await this.syncing.get(machine.id);
    return new AgentClient(endpoint);
  }

  /** A client when the machine is started right now; null otherwise (never wakes it). */
  async ifAwake(machine: Pick<Machine, 'id' | 'state' | 'runtime'>): Promise<AgentClient | null> {
    if (!this.lifecycle || machine.state !== 'started') return null;
    const driver = this.lifecycle.runtimes.driverFor(machine.runtime);
    if (!driver) return null;
    return new AgentClient(await driver.agentEndpoint(machine.id));
  }

  /** Resolves once a sync started by the machine's last start has finished. */
  whenSynced(machineId: string): Promise<void> {
    return this.syncing.get(machineId) ?? Promise.resolve();
  }

  syncServices(machineId: string): Promise<void> {
    const previous = this.syncing.get(machineId) ?? Promise.resolve();
    const next = previous
      .then(() => this.syncOnce(machineId))
      .catch((err) =>
        this.log.warn({ machine: machineId, err: (err as Error).message }, 'service sync failed'),
      )
      .finally(() => {
        if (this.syncing.get(machineId) === next) this.syncing.delete(machineId);
      });
    this.syncing.set(machineId, next);
    return next;
  }

  private async syncOnce(machineId: string): Promise<void> {
    if (!this.lifecycle) return;
    const [row] = await this.db.asSystem((tx) =>
      tx.query<{ runtime: Machine['runtime']; observed_state: string }>(
        'SELECT runtime, observed_state FROM machines WHERE id = $1',
        [machineId],
      ),
    );
    if (row?.observed_state !== 'started') return;
    const driver = this.lifecycle.runtimes.driverFor(row.runtime);
    if (!driver) return;
    const wanted = await this.db.asSystem((tx) => listDefinitions(tx, machineId));
    await syncAgentServices(new AgentClient(await driver.agentEndpoint(machineId)), wanted);
  }
}

/** Agent failures as API errors: the caller's input problems stay 4xx naming the field. */
export function toApiError(err: unknown): unknown {
  if (err instanceof AgentRequestError) {
    if (err.status === 400)
      return new ApiError(400, 'invalid_input', err.field ? `body.${err.message}` : err.message);
    if (err.status === 422) return new UnprocessableError(err.message, err.code);
    if (err.status < 500) return new ApiError(err.status, err.code, err.message);
    return new ApiError(502, 'agent_error', `The machine's agent failed: ${err.message}`);
  }
  if (err instanceof AgentUnreachableError)
    return new MachineUnavailableError(`The machine's agent did not answer (${err.message}).`);
  return err;
}

/** Runs `fn` and rethrows agent failures as API errors. */
export async function viaAgent<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApiError(err);
  }
}
