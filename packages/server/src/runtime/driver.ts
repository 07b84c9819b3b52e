// The contract between the lifecycle reconciler and whatever actually runs machines (this
// host's namespaces now; Sprites or an external runner later). Every call is idempotent:
// asking for the state a machine is already in succeeds without doing anything, so the
// reconciler can simply retry after a crash.
import type { Socket } from 'node:net';

export interface MachineSize {
  /** CPU quota in cores (0.5 = half a core). */
  cpu: number;
  memoryMiB: number;
  diskGiB: number;
  /** Maximum number of tasks (processes and threads) inside the machine. */
  pids: number;
}

export interface MachineSpec {
  id: string;
  /** The machine's hostname: a DNS label. */
  name: string;
  size: MachineSize;
}

/**
 * What the driver observes on the host, not what anyone wants:
 * - absent: nothing exists (never created, or destroyed);
 * - stopped: the filesystem exists, no process runs;
 * - started: running and not frozen;
 * - suspended: running but frozen (memory kept, no CPU);
 * - broken: leftovers of an interrupted start or stop; `stop` or `start` cleans them up.
 */
export type ObservedState = 'absent' | 'stopped' | 'started' | 'suspended' | 'broken';

export interface MachineStatus {
  id: string;
  state: ObservedState;
  /** Why the machine is broken, or other detail worth an event. */
  detail?: string;
}

/**
 * How the server talks to the agent inside a machine: HTTP over `connect()` (pass it as
 * http.request's `createConnection`) with `Authorization: Bearer <token>`. `socketPath` is for
 * logs and tools; connecting to it directly would follow whatever the machine put there.
 */
export type AgentEndpoint = {
  kind: 'unix';
  socketPath: string;
  token: string;
  connect: () => Socket;
  /**
   * A TCP connection straight to a port on the machine's network address, when the server's
   * host is on the machine's network (the local runtime's bridge). Machine URLs use it so
   * that requests skip the agent's relay; it reaches only apps listening on all addresses,
   * so callers fall back to the agent's tunnel (which reaches 127.0.0.1) when refused.
   */
  connectPort?: (port: number) => Socket;
};

export interface RuntimeDriver {
  readonly kind: string;
  /** Allocates the machine's resources (disk, addresses); leaves it stopped. */
  create(spec: MachineSpec): Promise<void>;
  /** Boots a stopped machine and resolves once its agent answers. */
  start(id: string): Promise<void>;
  /** Gracefully stops services, then kills every process; the filesystem is kept. */
  stop(id: string): Promise<void>;
  suspend(id: string): Promise<void>;
  /** Thaws a suspended machine; resolves once its agent answers again. */
  resume(id: string): Promise<void>;
  /** Stops the machine if needed and removes everything it owns. */
  destroy(id: string): Promise<void>;
  status(id: string): Promise<MachineStatus>;
  /** Every machine this driver knows about, including ones a previous process started. */
  list(): Promise<MachineStatus[]>;
  agentEndpoint(id: string): Promise<AgentEndpoint>;
  /** Releases host resources shared by machines once none is running; machines keep running. */
  close(): Promise<void>;
}

export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(
    message: string,
    readonly code:
      | 'invalid_argument'
      | 'not_found'
      | 'invalid_state'
      | 'unsupported_host'
      | 'agent_timeout'
      | 'failed',
  ) {
    super(message);
  }
}
