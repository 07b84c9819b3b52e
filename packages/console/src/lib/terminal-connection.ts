import { Backoff, type BackoffOptions, RECONNECT_BACKOFF } from './backoff.js';

// One terminal's WebSocket, kept alive across drops. It counts the output bytes it has
// handed to the screen so that a reconnect asks for `?offset=N` and the agent either resumes
// the byte stream exactly there (no duplicates, nothing lost) or, when that point has left
// its buffer, sends a screen snapshot first. The wire format is the agent's attach protocol
// (packages/protocol/src/agent-sessions.ts) as relayed by the server's terminal gateway.

export type ConnectionStatus =
  | 'connecting'
  | 'connected'
  /** The upgrade is taking long: the gateway is waking the machine. */
  | 'waking'
  | 'reconnecting'
  | 'exited'
  /** Gave up: the session is gone or the request was refused. */
  | 'closed';

export interface ConnectionInfo {
  status: ConnectionStatus;
  /** Consecutive failed attempts since the last successful attach. */
  attempt: number;
  /** When status is `reconnecting`: ms until the next try. */
  retryInMs: number | null;
  exitCode: number | null;
  message: string | null;
}

/** The subset of the browser WebSocket this module uses, so tests can pass Node's own. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export interface TerminalConnectionOptions {
  /** The attach URL for the given query (offset, cols, rows). */
  url: (query: Record<string, number>) => string;
  /** Output bytes to draw. */
  onOutput: (bytes: Uint8Array) => void;
  /** A snapshot follows: clear the screen before drawing it. */
  onReset: () => void;
  onStatus: (info: ConnectionInfo) => void;
  createSocket?: (url: string) => SocketLike;
  backoff?: BackoffOptions;
  random?: () => number;
  /** How long an upgrade may take before the machine is assumed to be waking. */
  wakingAfterMs?: number;
}

/** Close codes of the attach protocol (AGENT_CLOSE_CODES in @snapvm/protocol). */
const CLOSE_NOT_FOUND = 4004;
const CLOSE_EXITED = 1000;

const OPEN = 1;

export class TerminalConnection {
  private socket: SocketLike | null = null;
  private readonly backoff: Backoff;
  /** Stream bytes drawn so far; null until the first attach tells where the stream starts. */
  private offset: number | null = null;
  /** Bytes still to come that belong to a snapshot rather than to the stream. */
  private snapshotRemaining = 0;
  private size: { cols: number; rows: number } | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private wakingTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private info: ConnectionInfo = {
    status: 'connecting',
    attempt: 0,
    retryInMs: null,
    exitCode: null,
    message: null,
  };
  private readonly encoder = new TextEncoder();

  constructor(private readonly options: TerminalConnectionOptions) {
    this.backoff = new Backoff(options.backoff ?? RECONNECT_BACKOFF, options.random);
  }

  /** Total stream bytes received; what a reconnect resumes from. */
  get receivedOffset(): number | null {
    return this.offset;
  }

  get status(): ConnectionInfo {
    return this.info;
  }

  connect(): void {
    if (this.disposed) return;
    this.clearTimers();
    const query: Record<string, number> = {};
    if (this.offset !== null) query.offset = this.offset;
    if (this.size) {
      query.cols = this.size.cols;
      query.rows = this.size.rows;
    }
    const create =
      this.options.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(this.options.url(query));
    } catch (error) {
      this.scheduleReconnect(error instanceof Error ? error.message : String(error));
      return;
    }
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    let attached = false;
    this.setStatus({
      status: this.info.attempt > 0 ? 'reconnecting' : 'connecting',
      retryInMs: null,
    });
    this.wakingTimer = setTimeout(() => {
      if (this.socket === socket && !attached)
        this.setStatus({ status: 'waking', retryInMs: null });
    }, this.options.wakingAfterMs ?? 1500);

    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      if (typeof event.data === 'string') {
        if (this.handleControl(event.data)) attached = true;
      } else {
        this.handleOutput(toBytes(event.data));
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.disposed || this.info.status === 'exited') return;
      if (event.code === CLOSE_NOT_FOUND) {
        this.clearTimers();
        this.setStatus({
          status: 'closed',
          retryInMs: null,
          message:
            'This terminal session no longer exists (it was ended, or its machine stopped). Open a new one.',
        });
        return;
      }
      if (event.code === CLOSE_EXITED && attached) {
        this.clearTimers();
        this.setStatus({ status: 'exited', retryInMs: null });
        return;
      }
      this.scheduleReconnect(event.reason || null);
    };
    socket.onerror = () => {
      // Always followed by close, which decides what to do.
    };
  }

  /** Keystrokes or pasted text. Dropped while disconnected: the shell never saw them. */
  sendInput(data: string | Uint8Array): boolean {
    if (!this.socket || this.socket.readyState !== OPEN || this.info.status !== 'connected') {
      return false;
    }
    this.socket.send(typeof data === 'string' ? this.encoder.encode(data) : data);
    return true;
  }

  resize(cols: number, rows: number): void {
    if (this.size && this.size.cols === cols && this.size.rows === rows) return;
    this.size = { cols, rows };
    if (this.socket && this.socket.readyState === OPEN) {
      this.socket.send(JSON.stringify({ type: 'resize', cols, rows }));
    }
  }

  /** Skips the wait after a drop (e.g. the browser came back online). */
  reconnectNow(): void {
    if (this.disposed || this.socket || this.info.status === 'exited') return;
    this.connect();
  }

  dispose(): void {
    this.disposed = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'closed by the user');
  }

  private handleControl(text: string): boolean {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return false;
    }
    switch (message.type) {
      case 'attached': {
        const offset = Number(message.offset);
        if (message.mode === 'snapshot') {
          this.options.onReset();
          this.snapshotRemaining = Math.max(0, Number(message.snapshotBytes) || 0);
        } else {
          this.snapshotRemaining = 0;
        }
        this.offset = Number.isFinite(offset) ? offset : (this.offset ?? 0);
        this.backoff.reset();
        this.clearTimers();
        this.setStatus({ status: 'connected', attempt: 0, retryInMs: null, message: null });
        // The size may have changed while disconnected and the query only applies on attach.
        if (this.size && this.socket) {
          this.socket.send(JSON.stringify({ type: 'resize', ...this.size }));
        }
        return true;
      }
      case 'exit':
        this.clearTimers();
        this.setStatus({
          status: 'exited',
          retryInMs: null,
          exitCode: Number.isFinite(Number(message.code)) ? Number(message.code) : null,
        });
        return false;
      case 'waking':
        this.setStatus({ status: 'waking', retryInMs: null });
        return false;
      case 'error':
        this.setStatus({ message: typeof message.message === 'string' ? message.message : null });
        return false;
      default:
        return false;
    }
  }

  private handleOutput(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const snapshotPart = Math.min(this.snapshotRemaining, bytes.length);
    this.snapshotRemaining -= snapshotPart;
    const streamPart = bytes.length - snapshotPart;
    if (this.offset !== null) this.offset += streamPart;
    this.options.onOutput(bytes);
  }

  private scheduleReconnect(message: string | null): void {
    this.clearTimers();
    const delay = this.backoff.next();
    this.setStatus({
      status: 'reconnecting',
      attempt: this.backoff.failures,
      retryInMs: delay,
      message,
    });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.wakingTimer) clearTimeout(this.wakingTimer);
    this.retryTimer = null;
    this.wakingTimer = null;
  }

  private setStatus(change: Partial<ConnectionInfo>): void {
    this.info = { ...this.info, ...change };
    this.options.onStatus(this.info);
  }
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(0);
}
