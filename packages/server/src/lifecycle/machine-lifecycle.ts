// The running parts of the machine lifecycle, put together once per server process: the
// drivers, the reconciler, the idle monitor and the waker (docs/lifecycle.md).
import type { Machine } from '@snapvm/protocol';
import type { LifecycleConfig } from '../config.js';
import type { Database } from '../db/database.js';
import { MachineWaker } from '../machines/machine-waker.js';
import { IdleMonitor, type IdleStatus } from './idle-monitor.js';
import { Reconciler } from './reconciler.js';
import { createRuntimes, type LifecycleLog, type Runtimes } from './reconciler-runtimes.js';

export interface MachineLifecycle {
  readonly runtimes: Runtimes;
  readonly reconciler: Reconciler;
  readonly idle: IdleMonitor;
  readonly waker: MachineWaker;
  /** Call after a request changed a machine's desired state (or created one). */
  notify(machineId: string): void;
  /** Why the machine is awake and when it will next idle. */
  describe(machine: Machine): IdleStatus;
  /** Adopts what runs on the host and starts the periodic work; resolves after that sweep. */
  start(): Promise<void>;
  /** Stops the periodic work and waits for steps in flight; machines keep running. */
  close(): Promise<void>;
}

export function createMachineLifecycle(
  config: LifecycleConfig,
  dataDir: string,
  db: Database,
  log: LifecycleLog,
): MachineLifecycle {
  const runtimes = createRuntimes(config, dataDir, log);
  const reconciler = new Reconciler({
    db,
    runtimes,
    log,
    sweepIntervalMs: config.reconcileIntervalMs,
  });
  const idle = new IdleMonitor({
    db,
    runtimes,
    reconciler,
    log,
    pollMs: config.idlePollMs,
  });
  const waker = new MachineWaker({
    db,
    reconciler,
    runtimes,
    timeoutMs: config.wakeTimeoutMs,
    onWake: (id) => idle.touch(id),
  });
  return {
    runtimes,
    reconciler,
    idle,
    waker,
    notify(id) {
      void reconciler.notify(id);
    },
    describe: (machine) => idle.describe(machine),
    async start() {
      idle.start();
      await reconciler.start();
    },
    async close() {
      await idle.close();
      await reconciler.close();
      await runtimes.close();
    },
  };
}
