// Two-tier idling: a started machine with nothing keeping it busy for its suspend period is
// suspended (frozen, instant resume); after its stop period it is stopped (memory freed).
//
// Activity lives in memory: each poll asks every started machine's agent what keeps it busy
// (attached terminals, running execs, open proxied connections, recent input), and wakes
// count too. The database only gets `last_activity_at` now and then (PERSIST_MS), so
// requests never turn into writes, and a restarted server does not idle a machine that was
// just in use. Right before acting, activity is checked again and the decision is re-made
// under the row lock (the check-then-act race of anchors §3.5).
import type { AgentActivity, MachineState, RuntimeType } from '@snapvm/protocol';
import { AgentClient } from '../agent-client/agent-client.js';
import type { Database } from '../db/database.js';
import { EFFECTIVE_IDLE_COLUMNS } from '../machines/idle-settings.js';
import type { Reconciler } from './reconciler.js';
import type { LifecycleLog, Runtimes } from './reconciler-runtimes.js';
import { requestDesiredState } from './transitions.js';

export interface IdleStatus {
  busy: boolean;
  /** What keeps it awake, from the agent (e.g. "1 terminal client(s) attached"). */
  reasons: string[];
  lastActiveAt: string | null;
  /** When the agent was last asked. */
  checkedAt: string | null;
  /** The next idle action if nothing happens until then; null when none is due. */
  nextIdle: { action: 'suspend' | 'stop'; at: string } | null;
}

interface Seen {
  lastActiveMs: number;
  busy: boolean;
  reasons: string[];
  checkedMs: number | null;
  persistedMs: number;
}

/** The periods are the ones in effect: the machine's own, or its org's default. */
interface IdleRow {
  id: string;
  org_id: string;
  runtime: RuntimeType;
  desired_state: string;
  observed_state: MachineState;
  idle_suspend_seconds: number | null;
  idle_stop_seconds: number | null;
  last_activity_at: Date | string | null;
  state_changed_at: Date | string;
}

const IDLE_ROW = `SELECT m.id, m.org_id, m.runtime, m.desired_state, m.observed_state,
    ${EFFECTIVE_IDLE_COLUMNS}, m.last_activity_at, m.state_changed_at
  FROM machines m JOIN orgs o ON o.id = m.org_id`;

const PERSIST_MS = 60_000;
const AGENT_TIMEOUT_MS = 2_000;

export interface IdleMonitorOptions {
  db: Database;
  runtimes: Runtimes;
  reconciler: Reconciler;
  log: LifecycleLog;
  pollMs: number;
}

export class IdleMonitor {
  private readonly seen = new Map<string, Seen>();
  /** Requests the gateway relays right now, per machine: the agent does not see them all. */
  private readonly inFlight = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: IdleMonitorOptions) {
    // Becoming started (a start, a wake, a resume) is activity in itself.
    options.reconciler.on('state', ({ id, state }) => {
      if (state === 'started') this.touch(id);
      if (state === 'destroyed' || state === 'stopped') this.seen.delete(id);
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.options.pollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.polling;
  }

  /** Something used the machine just now (a wake, a gateway request). Memory only. */
  touch(id: string): void {
    const seen = this.seen.get(id);
    if (seen) seen.lastActiveMs = Date.now();
    else
      this.seen.set(id, {
        lastActiveMs: Date.now(),
        busy: false,
        reasons: [],
        checkedMs: null,
        persistedMs: 0,
      });
  }

  /**
   * A request to the machine is in flight (a long poll, a download): the machine stays busy
   * until the returned function is called. Memory only.
   */
  hold(id: string): () => void {
    this.touch(id);
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.inFlight.set(id, left);
      else this.inFlight.delete(id);
      this.touch(id);
    };
  }

  /** Why the machine is awake and when it will next idle, for the machine API. */
  describe(machine: {
    id: string;
    state: MachineState;
    desiredState: string;
    idle: { suspendAfterSeconds: number | null; stopAfterSeconds: number | null };
  }): IdleStatus {
    const seen = this.seen.get(machine.id);
    const lastActiveMs = seen?.lastActiveMs ?? null;
    const busy = this.isBusy(machine.id, seen);
    let nextIdle: IdleStatus['nextIdle'] = null;
    if (lastActiveMs !== null && !busy) {
      const due = dueActions(
        machine.state,
        machine.desiredState,
        machine.idle.suspendAfterSeconds,
        machine.idle.stopAfterSeconds,
        lastActiveMs,
      );
      const first = due[0];
      if (first) nextIdle = { action: first.action, at: new Date(first.atMs).toISOString() };
    }
    return {
      busy,
      reasons: [...(seen?.reasons ?? []), ...this.gatewayReasons(machine.id)],
      lastActiveAt: lastActiveMs === null ? null : new Date(lastActiveMs).toISOString(),
      checkedAt: seen?.checkedMs ? new Date(seen.checkedMs).toISOString() : null,
      nextIdle,
    };
  }

  /** One pass: refresh activity of every awake machine and idle those that are due. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce()
      .catch((err) => this.options.log.error({ err }, 'idle poll failed'))
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const rows = await this.options.db.asSystem((tx) =>
      tx.query<IdleRow>(
        `${IDLE_ROW}
          WHERE m.observed_state IN ('started', 'suspended')
            AND m.desired_state IN ('started', 'suspended')`,
      ),
    );
    for (const row of rows) {
      if (this.closed) return;
      try {
        await this.check(row);
      } catch (err) {
        this.options.log.warn({ err, machine: row.id }, 'idle check failed');
      }
    }
  }

  private async check(row: IdleRow): Promise<void> {
    const seen = this.remember(row);
    if (row.observed_state === 'started') {
      const activity = await this.ask(row);
      if (!activity) return;
      this.absorb(seen, activity);
    }
    await this.persist(row.id, seen);
    const action = dueAction(row, seen.lastActiveMs);
    if (!this.isBusy(row.id, seen) && action) await this.act(row, action, seen.lastActiveMs);
  }

  private async act(row: IdleRow, action: 'suspend' | 'stop', decidedOn: number): Promise<void> {
    // Look again right before acting: a terminal may have attached since the poll.
    if (row.observed_state === 'started') {
      const fresh = await this.ask(row);
      if (!fresh) return;
      const seen = this.remember(row);
      this.absorb(seen, fresh);
      if (this.isBusy(row.id, seen) || seen.lastActiveMs > decidedOn) return;
    }
    const desired = action === 'stop' ? 'stopped' : 'suspended';
    const changed = await this.options.db.asSystem(async (tx) => {
      const [locked] = await tx.query<IdleRow>(`${IDLE_ROW} WHERE m.id = $1 FOR UPDATE OF m`, [
        row.id,
      ]);
      // Under the lock: anything that moved since the poll (a wake, a user's start, a wake
      // in this process touching memory, another replica's activity, a longer period set on
      // the machine or its org) cancels the decision.
      const seen = this.seen.get(row.id);
      if (
        !locked ||
        locked.desired_state !== row.desired_state ||
        locked.observed_state !== row.observed_state ||
        (seen && seen.lastActiveMs > decidedOn) ||
        (locked.last_activity_at && toMs(locked.last_activity_at) > decidedOn) ||
        dueAction(locked, decidedOn) !== action
      )
        return false;
      await requestDesiredState(
        tx,
        { ...locked, desired_state: locked.desired_state as 'started' | 'suspended' },
        desired,
        { actorId: null, reason: 'idle' },
      );
      return true;
    });
    if (!changed) return;
    this.options.log.info({ machine: row.id, action }, 'idle');
    void this.options.reconciler.notify(row.id);
  }

  private remember(row: IdleRow): Seen {
    let seen = this.seen.get(row.id);
    if (!seen) {
      // After a restart: the last persisted activity, or when it last changed state.
      const since = Math.max(
        row.last_activity_at ? toMs(row.last_activity_at) : 0,
        toMs(row.state_changed_at),
      );
      seen = { lastActiveMs: since, busy: false, reasons: [], checkedMs: null, persistedMs: since };
      this.seen.set(row.id, seen);
    }
    return seen;
  }

  /** What the agent last reported, or a request through the machine URL in flight. */
  private isBusy(id: string, seen: Seen | undefined): boolean {
    return (seen?.busy ?? false) || this.inFlight.has(id);
  }

  private gatewayReasons(id: string): string[] {
    const requests = this.inFlight.get(id);
    return requests ? [`${requests} request(s) through the machine URL in progress`] : [];
  }

  private absorb(seen: Seen, activity: AgentActivity): void {
    const now = Date.now();
    seen.checkedMs = now;
    seen.busy = activity.busy;
    seen.reasons = activity.reasons;
    const agentLast = Math.max(
      Date.parse(activity.lastActivityAt) || 0,
      activity.lastInputAt ? Date.parse(activity.lastInputAt) || 0 : 0,
    );
    // The agent's clock is this host's clock (local runtime); never trust the future.
    const last = activity.busy ? now : Math.min(now, agentLast);
    if (last > seen.lastActiveMs) seen.lastActiveMs = last;
  }

  private async ask(row: IdleRow): Promise<AgentActivity | null> {
    const driver = this.options.runtimes.driverFor(row.runtime);
    if (!driver) return null;
    try {
      const client = new AgentClient(await driver.agentEndpoint(row.id));
      return await client.activity({ timeoutMs: AGENT_TIMEOUT_MS });
    } catch (err) {
      // An agent that does not answer is not idle, it is unknown: leave it alone.
      this.options.log.warn({ machine: row.id, err: (err as Error).message }, 'activity unknown');
      return null;
    }
  }

  private async persist(id: string, seen: Seen): Promise<void> {
    if (seen.lastActiveMs - seen.persistedMs < PERSIST_MS) return;
    await this.options.db.asSystem((tx) =>
      tx.query(
        `UPDATE machines SET last_activity_at = $2
          WHERE id = $1 AND (last_activity_at IS NULL OR last_activity_at < $2)`,
        [id, new Date(seen.lastActiveMs)],
      ),
    );
    seen.persistedMs = seen.lastActiveMs;
  }
}

/** What idling should do to the machine now, given its last activity; stop wins. */
function dueAction(row: IdleRow, lastActiveMs: number): 'suspend' | 'stop' | undefined {
  const due = dueActions(
    row.observed_state,
    row.desired_state,
    row.idle_suspend_seconds,
    row.idle_stop_seconds,
    lastActiveMs,
  ).filter((d) => d.atMs <= Date.now());
  return due.some((d) => d.action === 'stop') ? 'stop' : due[0]?.action;
}

/** The idle actions that apply to a machine in this state, earliest first. */
function dueActions(
  observed: string,
  desired: string,
  suspendAfter: number | null,
  stopAfter: number | null,
  lastActiveMs: number,
): { action: 'suspend' | 'stop'; atMs: number }[] {
  const actions: { action: 'suspend' | 'stop'; atMs: number }[] = [];
  if (observed === 'started' && desired === 'started' && suspendAfter)
    actions.push({ action: 'suspend', atMs: lastActiveMs + suspendAfter * 1000 });
  if ((observed === 'started' || observed === 'suspended') && desired !== 'stopped' && stopAfter)
    actions.push({ action: 'stop', atMs: lastActiveMs + stopAfter * 1000 });
  return actions.sort((a, b) => a.atMs - b.atMs);
}

function toMs(value: Date | string): number {
  return value instanceof Date ? value.getTime() : Date.parse(value);
}
