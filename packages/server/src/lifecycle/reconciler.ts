// Drives every machine's observed state toward its desired state through the runtime drivers.
//
// Crash safety: each step is an idempotent driver call followed by a recorded transition, and
// the state on the host (driver.status) is re-read before every step, so after a kill -9 the
// next sweep simply continues: running sandboxes are adopted, half-done starts and stops are
// finished or cleaned up by the driver. Transitional states in the database are only markers
// of work in progress; nothing waits on them.
//
// Exclusion: a process acts on a machine only while it holds the row's lease (migration
// 0004). In-process, one reconcile per machine runs at a time and a request that arrives
// meanwhile runs once more afterwards.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import {
  type DesiredState,
  type MachineSize,
  type MachineState,
  type RuntimeType,
  runtimeTypeSchema,
} from '@snapvm/protocol';
import type { Database, Tx } from '../db/database.js';
import type { ObservedState } from '../runtime/driver.js';
import { RuntimeError } from '../runtime/driver.js';
import { planStep, type Step, transitionPath } from './reconciler-plan.js';
import { type LifecycleLog, machineSpec, type Runtimes } from './reconciler-runtimes.js';
import { applyObservedState, type TransitionCause } from './transitions.js';

export interface LifecycleRow {
  id: string;
  org_id: string;
  name: string;
  size: MachineSize;
  runtime: RuntimeType;
  desired_state: DesiredState;
  observed_state: MachineState;
}

const ROW_COLUMNS = 'id, org_id, name, size, runtime, desired_state, observed_state';

export interface ReconcilerOptions {
  db: Database;
  runtimes: Runtimes;
  log: LifecycleLog;
  sweepIntervalMs: number;
  /** How long a lease lasts without renewal; renewed every third of it while working. */
  leaseMs?: number;
}

/** Emitted as 'state' after every recorded observed-state change. */
export interface StateChange {
  id: string;
  state: MachineState;
  reason: string;
}

const MAX_STEPS = 10;
const MAX_REASON = 2000;

export class Reconciler extends EventEmitter<{ state: [StateChange] }> {
  /** Identifies this process's leases; unique per process start. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private closed = false;
  private readonly leaseMs: number;
  /** Lease owners known to be crashed processes of this host. */
  private readonly deadOwners = new Set<string>();

  constructor(private readonly options: ReconcilerOptions) {
    super();
    this.leaseMs = options.leaseMs ?? 60_000;
  }

  /** Reconciles every machine now (adoption after a restart), then every sweep interval. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
    this.timer.unref();
    await this.sweep();
    await this.checkHost().catch((err) =>
      this.options.log.error({ err }, 'could not compare the host with the database'),
    );
  }

  /**
   * Sandboxes on the host that the database does not account for: one whose machine is
   * destroyed is a leftover and goes; one the database has never heard of is reported and
   * left alone (it may belong to another data directory's records, or a restored backup).
   */
  private async checkHost(): Promise<void> {
    for (const runtime of runtimeTypeSchema.options) {
      const driver = this.options.runtimes.driverFor(runtime);
      if (!driver) continue;
      const onHost = await driver.list();
      if (onHost.length === 0) continue;
      const known = await this.options.db.asSystem((tx) =>
        tx.query<{ id: string; observed_state: MachineState }>(
          `SELECT id::text, observed_state FROM machines WHERE id::text = ANY($1::text[])`,
          [onHost.map((m) => m.id)],
        ),
      );
      const states = new Map(known.map((m) => [m.id, m.observed_state]));
      for (const machine of onHost) {
        const state = states.get(machine.id);
        if (state === 'destroyed') {
          this.options.log.warn(
            { machine: machine.id },
            'removing the sandbox of a destroyed machine',
          );
          await driver.destroy(machine.id);
        } else if (state === undefined) {
          this.options.log.warn(
            { machine: machine.id, runtime, state: machine.state },
            'a sandbox on this host has no machine record; leaving it alone',
          );
        }
      }
    }
  }

  /** Stops sweeping and waits for the work in flight; running machines keep running. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.sweeping;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** Something about the machine changed (an API request, a wake, the idle monitor). */
  notify(id: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const running = this.inFlight.get(id);
    if (running) {
      this.again.add(id);
      return running;
    }
    const work = (async () => {
      try {
        do {
          this.again.delete(id);
          await this.reconcile(id);
        } while (this.again.has(id) && !this.closed);
      } catch (err) {
        this.options.log.error({ err, machine: id }, 'reconcile failed');
      } finally {
        this.inFlight.delete(id);
      }
    })();
    this.inFlight.set(id, work);
    return work;
  }

  /** One pass over every live machine. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const rows = await this.options.db.asSystem((tx) =>
          tx.query<{ id: string }>(
            `SELECT id FROM machines WHERE observed_state <> 'destroyed'
              AND (observed_state <> 'failed' OR desired_state = 'destroyed')`,
          ),
        );
        // One at a time: each boot is CPU-bound, and parallel ones only slow each other.
        for (const { id } of rows) {
          if (this.closed) break;
          await this.notify(id);
        }
      } catch (err) {
        this.options.log.error({ err }, 'reconcile sweep failed');
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  private async reconcile(id: string): Promise<void> {
    // Settled machines (most of them, most of the time) cost a read and a look at the host,
    // no write: the lease is taken only when there is something to do.
    const peek = await this.reload(id);
    if (!peek || (await this.plan(peek)).kind === 'done') return;
    const row = await this.acquireLease(id);
    if (!row) return;
    const renew = setInterval(() => void this.renewLease(id), this.leaseMs / 3);
    renew.unref();
    try {
      let current = row;
      for (let i = 0; i < MAX_STEPS && !this.closed; i++) {
        const next = await this.step(current);
        if (!next) return;
        current = next;
      }
    } finally {
      clearInterval(renew);
      await this.releaseLease(id).catch((err) =>
        this.options.log.warn({ err, machine: id }, 'could not release the machine lease'),
      );
    }
  }

  /** What to do next, from the row and what the driver sees on the host now. */
  private async plan(row: LifecycleRow): Promise<Step> {
    const driver = this.options.runtimes.driverFor(row.runtime);
    if (!driver) {
      if (row.desired_state === 'destroyed') return { kind: 'record', to: 'destroyed' };
      if (row.observed_state === 'failed' || row.observed_state === 'destroyed')
        return { kind: 'done' };
      return { kind: 'fail', reason: this.options.runtimes.unavailableReason(row.runtime) };
    }
    let host: ObservedState;
    try {
      host = (await driver.status(row.id)).state;
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'not_found')) throw err;
      host = 'absent';
    }
    return planStep(row.desired_state, row.observed_state, host);
  }

  /** Does one step; returns the re-read row to continue with, or null when settled. */
  private async step(row: LifecycleRow): Promise<LifecycleRow | null> {
    const driver = this.options.runtimes.driverFor(row.runtime);
    const step = await this.plan(row);
    if (step.kind === 'done') return null;
    const cause = await this.latestCause(row.id);
    if (step.kind === 'record') {
      const adopted = row.observed_state !== 'creating' && step.to !== 'destroyed';
      return this.record(row.id, step.to, adopted ? recovered(cause, row, step.to) : cause);
    }
    if (step.kind === 'fail') return this.record(row.id, 'failed', failure(cause, step.reason));
    if (!driver) return null;
    // The driver's errors make the machine fail. Each step's closing record is returned, not
    // awaited, inside the try: a database error there is no fact about the machine, so it
    // propagates and the next notification or sweep tries again.
    try {
      switch (step.kind) {
        case 'create':
          await driver.create(machineSpec(row));
          // Created machines are stopped on the host; the next step starts them if wanted.
          if (row.desired_state !== 'started' && row.desired_state !== 'suspended')
            return this.record(row.id, 'stopped', cause);
          return this.reload(row.id);
        case 'start':
          await this.record(row.id, 'starting', cause);
          await driver.start(row.id);
          return this.record(row.id, 'started', cause);
        case 'resume':
          await driver.resume(row.id);
          return this.record(row.id, 'started', cause);
        case 'suspend':
          await driver.suspend(row.id);
          return this.record(row.id, 'suspended', cause);
        case 'stop':
          await this.record(row.id, 'stopping', cause);
          await driver.stop(row.id);
          return this.record(row.id, 'stopped', cause);
        case 'destroy':
          await this.record(row.id, 'destroying', cause);
          await driver.destroy(row.id);
          return this.record(row.id, 'destroyed', cause);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.options.log.warn({ machine: row.id, step: step.kind, err: message }, 'step failed');
      await this.record(row.id, 'failed', failure(cause, `${step.kind} failed: ${message}`));
      return null;
    }
  }

  /**
   * Records `to` (through whatever intermediate states the table requires) in one
   * transaction with the row locked, and announces it.
   */
  private async record(
    id: string,
    to: MachineState,
    cause: TransitionCause,
  ): Promise<LifecycleRow | null> {
    const changed: MachineState[] = [];
    const row = await this.options.db.asSystem(async (tx) => {
      const locked = await loadRow(tx, id, true);
      if (!locked || locked.observed_state === 'destroyed') return null;
      const path = transitionPath(locked.observed_state, to);
      // Someone moved the machine on meanwhile (a destroy during a start): nothing to record,
      // the next step plans from the fresh row.
      if (!path) return locked;
      let ref = locked;
      for (const state of path) {
        ref = { ...ref, ...(await applyObservedState(tx, ref, state, cause)) };
        changed.push(state);
      }
      return ref;
    });
    for (const state of changed) this.emit('state', { id, state, reason: cause.reason });
    return row;
  }

  private reload(id: string): Promise<LifecycleRow | null> {
    return this.options.db.asSystem((tx) => loadRow(tx, id, false));
  }

  /** Who asked for the current desired state, and why: the cause of the work that follows. */
  private async latestCause(id: string): Promise<TransitionCause> {
    const [event] = await this.options.db.asSystem((tx) =>
      tx.query<{ actor_id: string | null; reason: string }>(
        `SELECT actor_id, reason FROM machine_events
          WHERE machine_id = $1 AND kind = 'desired' ORDER BY id DESC LIMIT 1`,
        [id],
      ),
    );
    return { actorId: event?.actor_id ?? null, reason: event?.reason ?? 'reconciler' };
  }

  private async acquireLease(id: string): Promise<LifecycleRow | null> {
    const [row] = await this.options.db.asSystem((tx) =>
      tx.query<LifecycleRow & { held_by: string | null }>(
        `UPDATE machines SET lease_owner = CASE
                  WHEN lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at < now()
                    OR lease_owner = ANY($4::text[]) THEN $2 ELSE lease_owner END,
                lease_expires_at = CASE
                  WHEN lease_owner IS NULL OR lease_owner = $2 OR lease_expires_at < now()
                    OR lease_owner = ANY($4::text[])
                  THEN now() + $3 * interval '1 millisecond' ELSE lease_expires_at END
          WHERE id = $1 AND observed_state <> 'destroyed'
          RETURNING ${ROW_COLUMNS}, lease_owner AS held_by`,
        [id, this.owner, this.leaseMs, [...this.deadOwners]],
      ),
    );
    if (!row) return null;
    if (row.held_by === this.owner) return row;
    // A lease of a process on this host that no longer exists (a kill -9 and a restart) need
    // not be waited out: take it over on the next try.
    if (row.held_by && isDeadLocalOwner(row.held_by)) {
      this.deadOwners.add(row.held_by);
      return this.acquireLease(id);
    }
    return null;
  }

  private async renewLease(id: string): Promise<void> {
    await this.options.db
      .asSystem((tx) =>
        tx.query(
          `UPDATE machines SET lease_expires_at = now() + $3 * interval '1 millisecond'
            WHERE id = $1 AND lease_owner = $2`,
          [id, this.owner, this.leaseMs],
        ),
      )
      .catch((err) => this.options.log.warn({ err, machine: id }, 'lease renewal failed'));
  }

  private async releaseLease(id: string): Promise<void> {
    await this.options.db.asSystem((tx) =>
      tx.query(
        `UPDATE machines SET lease_owner = NULL, lease_expires_at = NULL
          WHERE id = $1 AND lease_owner = $2`,
        [id, this.owner],
      ),
    );
  }
}

async function loadRow(tx: Tx, id: string, forUpdate: boolean): Promise<LifecycleRow | null> {
  const [row] = await tx.query<LifecycleRow>(
    `SELECT ${ROW_COLUMNS} FROM machines WHERE id = $1 ${forUpdate ? 'FOR UPDATE' : ''}`,
    [id],
  );
  return row ?? null;
}

/** `host:pid:nonce` of this host whose pid is gone. A reused pid only means waiting it out. */
function isDeadLocalOwner(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== hostname() || !pid || !/^\d+$/.test(pid) || Number(pid) === process.pid)
    return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function failure(cause: TransitionCause, reason: string): TransitionCause {
  const text = reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}…` : reason;
  return { actorId: cause.actorId, reason: `failed: ${text}` };
}

/** The database said one thing and the host another: say so in the event. */
function recovered(cause: TransitionCause, row: LifecycleRow, to: MachineState): TransitionCause {
  return {
    actorId: cause.actorId,
    reason: `${cause.reason}; adopted: the host shows it ${to} (recorded ${row.observed_state})`,
  };
}
