import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Service, ServiceDefinition, ServiceStatus } from '@snapvm/protocol';
import { buildChildEnv } from '../child-env.js';
import { log } from '../log.js';
import type { ServiceLog } from './service-log.js';

export interface RunnerTiming {
  stopGraceMs: number;
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
}

const READINESS_INTERVAL_MS = 250;
const READINESS_TIMEOUT_MS = 1000;
// A run this long counts as healthy and resets the backoff.
const STABLE_RUN_MS = 10_000;

/** Supervises one service: spawn in its own process group, restart with capped exponential
 * backoff per its policy, readiness checks, and stop = SIGTERM to the group, then SIGKILL. */
export class ServiceRunner {
  private child: ChildProcess | null = null;
  private status: ServiceStatus = 'stopped';
  private startedAt: Date | null = null;
  private exitCode: number | null = null;
  private exitSignal: string | null = null;
  private restartCount = 0;
  private failuresInRow = 0;
  private nextRestartAt: Date | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private readinessTimer: NodeJS.Timeout | null = null;
  private wanted = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    public definition: ServiceDefinition,
    readonly log: ServiceLog,
    private readonly timing: RunnerTiming,
  ) {}

  get isRunning(): boolean {
    return this.child !== null;
  }

  describe(): Service {
    return {
      name: this.name,
      ...this.definition,
      status: this.status,
      pid: this.child?.pid ?? null,
      startedAt: this.startedAt?.toISOString() ?? null,
      exitCode: this.exitCode,
      exitSignal: this.exitSignal,
      restartCount: this.restartCount,
      nextRestartAt: this.nextRestartAt?.toISOString() ?? null,
    };
  }

  private setStatus(status: ServiceStatus): void {
    this.status = status;
    for (const wake of this.waiters) wake();
  }

  /** Resolves true once the service is up, false when it gave up or after `timeoutMs`. */
  /** Ready, or running when there is no readiness check: dependents may start. */
  get isUp(): boolean {
    return this.status === 'ready' || (this.status === 'running' && !this.definition.readiness);
  }

  waitUntilUp(timeoutMs: number): Promise<boolean> {
    const up = () => this.isUp;
    const final = () => this.status === 'failed' || this.status === 'stopped';
    if (up()) return Promise.resolve(true);
    if (final() && !this.wanted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const check = () => {
        if (up()) done(true);
        else if (final() && !this.wanted) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Marks the service as about to start (it waits for its dependencies), so dependents
   * wait for it instead of giving up on a service that merely has not started yet. */
  expectStart(): void {
    this.wanted = true;
  }

  start(): void {
    this.wanted = true;
    this.failuresInRow = 0;
    if (this.child || this.status === 'backoff') {
      if (this.status === 'backoff') this.spawnNow();
      return;
    }
    this.spawnNow();
  }

  private spawnNow(): void {
    this.clearRestartTimer();
    const def = this.definition;
    this.setStatus('starting');
    let child: ChildProcess;
    try {
      child = spawn(def.command, def.args, {
        cwd: def.cwd,
        env: buildChildEnv(def.env),
        // Own process group, so stop and restart reach everything the service started.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      this.handleSpawnFailure(err as Error);
      return;
    }
    this.child = child;
    this.startedAt = new Date();
    child.stdout?.on('data', (chunk: Buffer) => this.log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.log.write(chunk));
    child.once('spawn', () => {
      if (this.child !== child) return;
      this.setStatus('running');
      log('info', 'service started', { service: this.name, pid: child.pid });
      if (def.readiness) this.pollReadiness(child);
    });
    child.once('error', (err) => {
      if (this.child === child && child.pid === undefined) {
        this.child = null;
        this.handleSpawnFailure(err);
      }
    });
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.handleExit(code, signal);
    });
  }

  private handleSpawnFailure(err: Error): void {
    this.log.write(Buffer.from(`snapvm-agent: cannot start ${this.name}: ${err.message}\n`));
    this.handleExit(127, null);
  }

  private handleExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.clearReadinessTimer();
    this.exitCode = code;
    this.exitSignal = signal;
    const ranFor = this.startedAt ? Date.now() - this.startedAt.getTime() : 0;
    log('info', 'service exited', { service: this.name, code, signal });
    if (!this.wanted) {
      this.setStatus('stopped');
      return;
    }
    const failed = code !== 0;
    const policy = this.definition.restart;
    if (policy === 'never' || (policy === 'on-failure' && !failed)) {
      this.wanted = false;
      this.setStatus(failed ? 'failed' : 'stopped');
      return;
    }
    if (ranFor >= STABLE_RUN_MS) this.failuresInRow = 0;
    this.failuresInRow++;
    const delay = Math.min(
      this.timing.restartBackoffMs * 2 ** (this.failuresInRow - 1),
      this.timing.restartBackoffMaxMs,
    );
    this.nextRestartAt = new Date(Date.now() + delay);
    this.setStatus('backoff');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.nextRestartAt = null;
      this.restartCount++;
      this.spawnNow();
    }, delay);
  }

  private pollReadiness(child: ChildProcess): void {
    const readiness = this.definition.readiness;
    if (!readiness) return;
    const tick = async () => {
      this.readinessTimer = null;
      if (this.child !== child || this.status !== 'running') return;
      const port = readiness.port ?? this.definition.httpPort;
      const ok =
        port !== undefined &&
        (readiness.type === 'http' ? await probeHttp(port, readiness.path) : await probeTcp(port));
      if (this.child !== child || this.status !== 'running') return;
      if (ok) this.setStatus('ready');
      else this.readinessTimer = setTimeout(tick, READINESS_INTERVAL_MS);
    };
    this.readinessTimer = setTimeout(tick, 0);
  }

  /** Stops the service and keeps it stopped; resolves when the process group leader is gone. */
  async stop(): Promise<void> {
    this.wanted = false;
    this.clearRestartTimer();
    this.clearReadinessTimer();
    const child = this.child;
    if (!child?.pid) {
      this.nextRestartAt = null;
      this.setStatus('stopped');
      return;
    }
    this.setStatus('stopping');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      log('warn', 'service ignored SIGTERM; killing', { service: this.name });
      if (child.pid) signalGroup(child.pid, 'SIGKILL');
    }, this.timing.stopGraceMs);
    await exited;
    clearTimeout(timer);
    // Whatever else the service left in its group goes with it.
    signalGroup(child.pid, 'SIGKILL');
  }

  private clearRestartTimer(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  private clearReadinessTimer(): void {
    if (this.readinessTimer) clearTimeout(this.readinessTimer);
    this.readinessTimer = null;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function probeTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: READINESS_TIMEOUT_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

function probeHttp(port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', timeout: READINESS_TIMEOUT_MS },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 400);
      },
    );
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}
