import { AGENT_CLOSE_CODES, type AttachServerMessage, type Session } from '@snapvm/protocol';
import { type IPty, spawn } from 'node-pty';
import type { WebSocket } from 'ws';
import type { ActivityTracker } from '../activity.js';
import { log } from '../log.js';
import { ByteRing } from './byte-ring.js';
import type { ScreenModel, ScreenModelPool } from './screen-model.js';

export interface TerminalSessionOptions {
  id: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  idleTimeoutSeconds?: number;
}

export interface TerminalLimits {
  scrollback: number;
  ringBytes: number;
  modelLagBytes: number;
  attachHistory: number;
  clientQueueBytes: number;
}

interface Client {
  ws: WebSocket;
  cols: number | null;
  rows: number | null;
  /** False while a snapshot is being prepared: live output reaches it through the replay. */
  live: boolean;
}

const KILL_GRACE_MS = 2000;

/** One PTY with its output ring, screen model and attached clients. Output is forwarded to
 * clients before anything else touches it; the model follows in a worker. */
export class TerminalSession {
  readonly createdAt = new Date();
  private readonly pty: IPty;
  private readonly ring: ByteRing;
  private readonly model: ScreenModel;
  private readonly clients = new Set<Client>();
  private cols: number;
  private rows: number;
  private exitCode: number | null = null;
  private paused = false;
  private snapshotsWanted = 0;
  private lastActivityAt = new Date();
  private idleTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number>;

  constructor(
    readonly options: TerminalSessionOptions,
    private readonly limits: TerminalLimits,
    pool: ScreenModelPool,
    private readonly activity: ActivityTracker,
  ) {
    this.cols = options.cols;
    this.rows = options.rows;
    this.ring = new ByteRing(limits.ringBytes);
    this.model = pool.open(options.cols, options.rows, limits.scrollback);
    this.model.onProgress = () => this.updateFlow();
    const [file, ...args] = options.command as [string, ...string[]];
    try {
      this.pty = spawn(file, args, {
        name: 'xterm-256color',
        cols: options.cols,
        rows: options.rows,
        cwd: options.cwd,
        env: options.env,
        // Bytes, not strings: offsets count bytes and UTF-8 may split across reads.
        encoding: null,
      });
    } catch (err) {
      this.model.close();
      throw err;
    }
    this.pty.onData((data) => this.handleOutput(data as unknown as Buffer));
    this.exited = new Promise((resolve) => {
      this.pty.onExit(({ exitCode, signal }) => {
        this.exitCode = signal ? 128 + signal : exitCode;
        resolve(this.exitCode);
        this.handleExit();
      });
    });
    this.armIdleTimer();
  }

  get id(): string {
    return this.options.id;
  }

  get running(): boolean {
    return this.exitCode === null;
  }

  get attachedClients(): number {
    return this.clients.size;
  }

  describe(): Session {
    return {
      id: this.id,
      command: this.options.command,
      cwd: this.options.cwd,
      pid: this.pty.pid,
      state: this.running ? 'running' : 'exited',
      exitCode: this.exitCode,
      createdAt: this.createdAt.toISOString(),
      lastActivityAt: this.lastActivityAt.toISOString(),
      attachedClients: this.clients.size,
      cols: this.cols,
      rows: this.rows,
      offset: this.ring.endOffset,
    };
  }

  private handleOutput(data: Buffer): void {
    this.ring.write(data);
    for (const client of this.clients) if (client.live) this.sendBytes(client, data);
    this.model.feed(data);
    this.activity.touchOutput();
    this.updateFlow();
  }

  // The PTY is paused only for the model, never for a client: a client that cannot keep up
  // is dropped instead (sendBytes). While a snapshot is wanted the model may lag only half
  // the ring, so it catches up to bytes the ring still holds and the snapshot can join them.
  private updateFlow(): void {
    if (!this.running) return;
    const lag = this.model.lag;
    const cap =
      this.snapshotsWanted > 0
        ? Math.min(this.limits.ringBytes / 2, this.limits.modelLagBytes)
        : this.limits.modelLagBytes;
    if (!this.paused && lag > cap) {
      this.paused = true;
      this.pty.pause();
    } else if (this.paused && lag <= cap / 2) {
      this.paused = false;
      this.pty.resume();
    }
  }

  private sendBytes(client: Client, data: Uint8Array): void {
    if (client.ws.bufferedAmount > this.limits.clientQueueBytes) {
      this.detach(client);
      client.ws.close(AGENT_CLOSE_CODES.slowConsumer, 'slow consumer: reconnect with your offset');
      return;
    }
    client.ws.send(data, { binary: true });
  }

  private sendControl(client: Client, message: AttachServerMessage): void {
    client.ws.send(JSON.stringify(message));
  }

  /** Adds a client. With an `offset` still in the ring it gets exactly the bytes it missed;
   * otherwise a screen snapshot taken at model offset M followed by ring bytes M..live. */
  async attach(
    ws: WebSocket,
    request: { offset?: number; cols?: number; rows?: number; history?: number },
  ): Promise<void> {
    const client: Client = {
      ws,
      cols: request.cols ?? null,
      rows: request.rows ?? null,
      live: false,
    };
    this.clients.add(client);
    this.clearIdleTimer();
    this.lastActivityAt = new Date();
    this.activity.touch();
    ws.on('close', () => this.detach(client));
    this.applyClientSizes();

    const { offset } = request;
    if (offset !== undefined && offset >= this.ring.startOffset && offset <= this.ring.endOffset) {
      this.startStream(client, 'resume', offset, null);
      return;
    }
    const history = Math.min(request.history ?? this.limits.attachHistory, this.limits.scrollback);
    // The model may lag the ring; ask for a snapshot no older than the ring's start so the
    // bytes between the two are still there to replay. Under heavy output the ring can move
    // on while we wait, hence the loop.
    for (let attempt = 0; attempt < 5 && this.clients.has(client); attempt++) {
      let snapshot: Awaited<ReturnType<ScreenModel['snapshot']>>;
      this.snapshotsWanted++;
      this.updateFlow();
      try {
        snapshot = await this.model.snapshot(this.ring.startOffset, history);
      } catch (err) {
        log('warn', 'screen snapshot failed; replaying raw output', {
          session: this.id,
          err: (err as Error).message,
        });
        break;
      } finally {
        this.snapshotsWanted--;
        this.updateFlow();
      }
      if (!this.clients.has(client)) return;
      if (snapshot.offset >= this.ring.startOffset) {
        this.startStream(client, 'snapshot', snapshot.offset, snapshot.data);
        return;
      }
    }
    if (this.clients.has(client)) this.startStream(client, 'resume', this.ring.startOffset, null);
  }

  private startStream(
    client: Client,
    mode: 'resume' | 'snapshot',
    from: number,
    snapshot: Uint8Array | null,
  ): void {
    const offset = mode === 'snapshot' ? this.ring.alignToCharStart(from) : from;
    this.sendControl(client, {
      type: 'attached',
      session: this.id,
      mode,
      offset,
      snapshotBytes: snapshot?.length ?? 0,
      cols: this.cols,
      rows: this.rows,
    });
    if (snapshot) client.ws.send(snapshot, { binary: true });
    const missed = this.ring.readFrom(offset);
    if (missed && missed.length > 0) client.ws.send(missed, { binary: true });
    client.live = true;
    if (!this.running) {
      this.sendControl(client, {
        type: 'exit',
        code: this.exitCode ?? 0,
        offset: this.ring.endOffset,
      });
      client.ws.close(AGENT_CLOSE_CODES.exited, 'session exited');
    }
  }

  /** Older scrollback as plain text, for clients that want more than the snapshot had. */
  history(before: number | null, lines: number) {
    return this.model.history(before, lines);
  }

  private detach(client: Client): void {
    if (!this.clients.delete(client)) return;
    this.lastActivityAt = new Date();
    this.activity.touch();
    this.applyClientSizes();
    this.armIdleTimer();
  }

  input(data: Buffer): void {
    if (!this.running) return;
    this.lastActivityAt = new Date();
    this.activity.touchInput();
    this.pty.write(data);
  }

  resizeClient(ws: WebSocket, cols: number, rows: number): void {
    for (const client of this.clients) {
      if (client.ws === ws) {
        client.cols = cols;
        client.rows = rows;
      }
    }
    this.applyClientSizes();
  }

  /** Like tmux: the PTY takes the smallest size any attached client asked for. */
  private applyClientSizes(): void {
    let cols = Number.POSITIVE_INFINITY;
    let rows = Number.POSITIVE_INFINITY;
    for (const client of this.clients) {
      if (client.cols !== null) cols = Math.min(cols, client.cols);
      if (client.rows !== null) rows = Math.min(rows, client.rows);
    }
    if (!Number.isFinite(cols)) cols = this.cols;
    if (!Number.isFinite(rows)) rows = this.rows;
    if (cols === this.cols && rows === this.rows) return;
    this.resize(cols, rows);
  }

  resize(cols: number, rows: number): void {
    if (!this.running) return;
    this.cols = cols;
    this.rows = rows;
    this.pty.resize(cols, rows);
    this.model.resize(cols, rows);
    for (const client of this.clients) {
      if (client.live) this.sendControl(client, { type: 'size', cols, rows });
    }
  }

  private armIdleTimer(): void {
    const seconds = this.options.idleTimeoutSeconds;
    if (!seconds || this.clients.size > 0 || !this.running) return;
    this.clearIdleTimer();
    this.idleTimer = setTimeout(() => {
      log('info', 'ending idle detached session', { session: this.id });
      this.end();
    }, seconds * 1000);
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private handleExit(): void {
    this.clearIdleTimer();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.lastActivityAt = new Date();
    for (const client of this.clients) {
      if (!client.live) continue;
      this.sendControl(client, {
        type: 'exit',
        code: this.exitCode ?? 0,
        offset: this.ring.endOffset,
      });
      client.ws.close(AGENT_CLOSE_CODES.exited, 'session exited');
    }
  }

  /** Hangs up the terminal like a closed window; SIGKILL if the process ignores it. */
  end(): Promise<number> {
    if (this.running) {
      this.pty.kill('SIGHUP');
      this.killTimer ??= setTimeout(() => {
        if (this.running) this.pty.kill('SIGKILL');
      }, KILL_GRACE_MS);
    }
    return this.exited;
  }

  /** Frees the model and closes remaining sockets once the session is forgotten. */
  dispose(code: number = AGENT_CLOSE_CODES.notFound): void {
    this.clearIdleTimer();
    if (this.killTimer) clearTimeout(this.killTimer);
    for (const client of this.clients) client.ws.close(code, 'session gone');
    this.clients.clear();
    this.model.close();
  }
}
