// wakeMachine: "I need this machine's agent now". Used by exec, and by the gateways
// (terminals, machine URLs) to hold a request while a suspended or stopped machine wakes.
// docs/lifecycle.md describes the contract for callers.
import type { MachineState, RuntimeType } from '@snapvm/protocol';
import type { Database } from '../db/database.js';
import { ApiError, ConflictError, NotFoundError } from '../errors.js';
import type { Reconciler, StateChange } from '../lifecycle/reconciler.js';
import type { Runtimes } from '../lifecycle/reconciler-runtimes.js';
import { applyObservedState, requestDesiredState } from '../lifecycle/transitions.js';
import type { AgentEndpoint } from '../runtime/driver.js';

/** 503 with Retry-After: the machine could not be made ready in time (or cannot run here). */
export class MachineUnavailableError extends ApiError {
  constructor(message: string, retryAfterSeconds = 5) {
    super(503, 'machine_unavailable', message, { 'retry-after': String(retryAfterSeconds) });
  }
}

export interface WakeOptions {
  /** Who is waking it (recorded in the machine's events); null for the system. */
  actorId?: string | null;
  /** The caller gave up (client disconnected): stop waiting. The wake itself goes on. */
  signal?: AbortSignal;
}

interface WakeRow {
  id: string;
  org_id: string;
  runtime: RuntimeType;
  desired_state: 'started' | 'suspended' | 'stopped' | 'destroyed';
  observed_state: MachineState;
}

const POLL_MS = 250;

export class MachineWaker {
  private readonly waking = new Map<string, Promise<AgentEndpoint>>();

  constructor(
    private readonly deps: {
      db: Database;
      reconciler: Reconciler;
      runtimes: Runtimes;
      timeoutMs: number;
      /** Called on every wake, before anything else: it counts as activity for idling. */
      onWake?: (machineId: string) => void;
    },
  ) {}

  /**
   * Makes the machine `started` and returns how to reach its agent. Concurrent callers for
   * one machine share one wake. The caller must have authorized access to the machine.
   * Throws MachineUnavailableError (503) when it is not ready within the wake timeout or its
   * runtime cannot run here, NotFoundError when it is gone, ConflictError when it is being
   * destroyed.
   */
  async wake(machine: { id: string }, options: WakeOptions = {}): Promise<AgentEndpoint> {
    this.deps.onWake?.(machine.id);
    // One indexed read, no write: what another server did to the machine a moment ago
    // (suspend, stop) is seen here, which no in-memory cache could promise.
    const row = await this.load(machine.id);
    if (row.desired_state === 'started' && row.observed_state === 'started')
      return this.endpointOf(row);
    let shared = this.waking.get(machine.id);
    if (!shared) {
      shared = this.wakeOnce(machine.id, options.actorId ?? null).finally(() =>
        this.waking.delete(machine.id),
      );
      this.waking.set(machine.id, shared);
    }
    if (!options.signal) return shared;
    const signal = options.signal;
    return new Promise<AgentEndpoint>((resolve, reject) => {
      const abort = () => reject(new MachineUnavailableError('The wait was cancelled.'));
      if (signal.aborted) return abort();
      signal.addEventListener('abort', abort, { once: true });
      shared.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
    });
  }

  private async wakeOnce(id: string, actorId: string | null): Promise<AgentEndpoint> {
    const deadline = Date.now() + this.deps.timeoutMs;
    let outcome: { state: MachineState; reason: string } | undefined;
    let wakeUp: () => void = () => {};
    const listener = (change: StateChange) => {
      if (change.id !== id || (change.state !== 'started' && change.state !== 'failed')) return;
      outcome = change;
      wakeUp();
    };
    this.deps.reconciler.on('state', listener);
    try {
      let row = await this.requestStart(id, actorId);
      if (row.observed_state !== 'started') void this.deps.reconciler.notify(id);
      // Events are the fast path; polling covers a reconciler in another server process.
      while (row.observed_state !== 'started') {
        if (outcome?.state === 'failed') throw this.failed(outcome.reason);
        if (outcome?.state === 'started') break;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new MachineUnavailableError(
            `The machine did not wake within ${Math.round(this.deps.timeoutMs / 1000)} s; try again shortly.`,
          );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(POLL_MS, left));
          wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (outcome) continue;
        row = await this.load(id);
        if (row.observed_state === 'failed') throw this.failed(await this.lastReason(id));
        if (row.desired_state !== 'started')
          throw new MachineUnavailableError(
            `The machine was asked to be ${row.desired_state} while it was waking.`,
          );
      }
      return await this.endpointOf(row);
    } finally {
      this.deps.reconciler.off('state', listener);
    }
  }

  /** Asks for `started` (cause "wake"); a failed machine is retried, as a start would. */
  private requestStart(id: string, actorId: string | null): Promise<WakeRow> {
    return this.deps.db.asSystem(async (tx) => {
      const [row] = await tx.query<WakeRow>(
        `SELECT id, org_id, runtime, desired_state, observed_state FROM machines
          WHERE id = $1 AND observed_state <> 'destroyed' FOR UPDATE`,
        [id],
      );
      if (!row) throw new NotFoundError('Machine');
      if (row.desired_state === 'destroyed' || row.observed_state === 'destroying')
        throw new ConflictError('The machine is being destroyed.', 'invalid_transition');
      if (!this.deps.runtimes.driverFor(row.runtime))
        throw new MachineUnavailableError(
          `${this.deps.runtimes.unavailableReason(row.runtime)}.`,
          60,
        );
      const cause = { actorId, reason: 'wake' };
      const wanted = await requestDesiredState(tx, row, 'started', cause);
      if (row.observed_state !== 'failed') return { ...row, ...wanted };
      const retried = await applyObservedState(tx, wanted, 'starting', cause);
      return { ...row, ...retried };
    });
  }

  private async load(id: string): Promise<WakeRow> {
    const [row] = await this.deps.db.asSystem((tx) =>
      tx.query<WakeRow>(
        `SELECT id, org_id, runtime, desired_state, observed_state FROM machines
          WHERE id = $1 AND observed_state <> 'destroyed'`,
        [id],
      ),
    );
    if (!row) throw new NotFoundError('Machine');
    return row;
  }

  private async lastReason(id: string): Promise<string> {
    const [event] = await this.deps.db.asSystem((tx) =>
      tx.query<{ reason: string }>(
        `SELECT reason FROM machine_events WHERE machine_id = $1 AND to_state = 'failed'
          ORDER BY id DESC LIMIT 1`,
        [id],
      ),
    );
    return event?.reason ?? 'failed';
  }

  private failed(reason: string): MachineUnavailableError {
    const why = reason.replace(/^failed: /, '');
    return new MachineUnavailableError(
      `The machine could not be started (${why.length > 300 ? `${why.slice(0, 300)}…` : why}); its events have the details.`,
      30,
    );
  }

  private async endpointOf(row: WakeRow): Promise<AgentEndpoint> {
    const driver = this.deps.runtimes.driverFor(row.runtime);
    if (!driver)
      throw new MachineUnavailableError(this.deps.runtimes.unavailableReason(row.runtime), 60);
    return driver.agentEndpoint(row.id);
  }
}
