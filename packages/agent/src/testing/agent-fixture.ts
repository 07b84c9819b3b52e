// Test support: a real agent on a loopback port with its own state directory, and a
// terminal client that records exactly what the agent sent.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import headless from '@xterm/headless';
import WebSocket from 'ws';
import { type RunningAgent, startAgent } from '../agent.js';
import type { AgentConfig } from '../config.js';

process.env.SNAPVM_AGENT_LOG ??= 'silent';

export interface TestAgent {
  agent: RunningAgent;
  base: string;
  token: string;
  stateDir: string;
  config: AgentConfig;
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{
    status: number;
    // biome-ignore lint/suspicious/noExplicitAny: tests read responses by shape and assert each field they use
    body: any;
  }>;
  connect(path: string, headers?: Record<string, string>): WebSocket;
  /** Stops the agent; the state directory stays until `cleanup`. */
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startTestAgent(
  overrides: Partial<AgentConfig> = {},
  stateDir = mkdtempSync(join(tmpdir(), 'snapvm-agent-test-')),
): Promise<TestAgent> {
  const token = randomBytes(24).toString('hex');
  const config: AgentConfig = {
    socketPath: null,
    listen: { host: '127.0.0.1', port: 0 },
    token,
    startGateFd: null,
    stateDir,
    maxSessions: 10,
    scrollback: 1000,
    ringBytes: 256 * 1024,
    modelLagBytes: 16 * 1024 * 1024,
    attachHistory: 200,
    clientQueueBytes: 4 * 1024 * 1024,
    exitedRetentionMs: 5000,
    screenWorkers: 1,
    stopGraceMs: 2000,
    restartBackoffMs: 100,
    restartBackoffMaxMs: 5000,
    logFileBytes: 64 * 1024,
    ...overrides,
  };
  const agent = await startAgent(config);
  const base = `http://127.0.0.1:${agent.port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await agent.close();
  };
  return {
    agent,
    base,
    token,
    stateDir,
    config,
    async request(method, path, body, headers = { authorization: `Bearer ${token}` }) {
      const res = await fetch(base + path, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body:
          body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // plain text (logs, proxied pages)
      }
      return { status: res.status, body: parsed };
    },
    connect(path, headers = { authorization: `Bearer ${token}` }) {
      return new WebSocket(`ws://127.0.0.1:${agent.port}${path}`, { headers });
    },
    stop,
    async cleanup() {
      await stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export interface ControlMessage {
  type: string;
  [key: string]: unknown;
}

/** A terminal client: collects control messages and output bytes (snapshot kept apart). */
export class TerminalClient {
  readonly controls: ControlMessage[] = [];
  snapshot = Buffer.alloc(0);
  private readonly chunks: Buffer[] = [];
  /** Bytes of stream received so far (cheap to poll, unlike `stream`). */
  streamLength = 0;
  closeCode: number | null = null;
  private snapshotLeft = 0;
  private attachedSeen = false;
  private readonly waiters = new Set<() => void>();
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code) => {
        this.closeCode = code;
        this.notify();
        resolve(code);
      });
    });
    ws.on('message', (data, isBinary) => {
      const bytes = Buffer.from(data as Buffer);
      if (!isBinary) {
        const message = JSON.parse(bytes.toString('utf8')) as ControlMessage;
        this.controls.push(message);
        if (message.type === 'attached') {
          this.attachedSeen = true;
          this.snapshotLeft = message.snapshotBytes as number;
        }
      } else if (this.attachedSeen && this.snapshotLeft > 0) {
        this.snapshot = Buffer.concat([this.snapshot, bytes]);
        this.snapshotLeft -= bytes.length;
      } else {
        this.chunks.push(bytes);
        this.streamLength += bytes.length;
      }
      this.notify();
    });
  }

  /** Stream bytes after the snapshot, starting at `attached.offset`. */
  get stream(): Buffer {
    if (this.chunks.length > 1)
      this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get attached(): ControlMessage | undefined {
    return this.controls.find((m) => m.type === 'attached');
  }

  private notify(): void {
    for (const wake of this.waiters) wake();
  }

  /** Resolves when `check` holds, rejecting after `timeoutMs` with `what` in the message. */
  waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(
          new Error(
            `timed out waiting for ${what}; got ${JSON.stringify(this.text().slice(-300))}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  text(): string {
    return this.stream.toString('utf8');
  }

  /** Waits until the stream contains `needle`, scanning each byte once so that waiting on
   * a flood does not slow this client down until the agent drops it. */
  waitForText(needle: string, timeoutMs?: number): Promise<void> {
    const target = Buffer.from(needle);
    let scanned = 0;
    let carry = Buffer.alloc(0);
    const test = () => {
      if (this.streamLength === scanned) return false;
      const fresh = this.streamSince(scanned);
      scanned = this.streamLength;
      const window = Buffer.concat([carry, fresh]);
      if (window.includes(target)) return true;
      carry = window.subarray(Math.max(0, window.length - target.length + 1));
      return false;
    };
    return this.waitFor(test, needle, timeoutMs);
  }

  /** Stream bytes from `offset` (relative to the stream start) to what has arrived. */
  private streamSince(offset: number): Buffer {
    const parts: Buffer[] = [];
    let at = this.streamLength;
    for (let i = this.chunks.length - 1; i >= 0 && at > offset; i--) {
      const chunk = this.chunks[i] as Buffer;
      at -= chunk.length;
      parts.unshift(at < offset ? chunk.subarray(offset - at) : chunk);
    }
    return Buffer.concat(parts);
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  control(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  close(): Promise<number> {
    this.ws.close();
    return this.closed;
  }
}

export async function attachClient(
  agent: TestAgent,
  sessionId: string,
  query = '',
): Promise<TerminalClient> {
  const client = new TerminalClient(agent.connect(`/v1/sessions/${sessionId}/attach${query}`));
  await client.opened;
  await client.waitFor(
    () => client.attached !== undefined && !clientAwaitingSnapshot(client),
    'attached',
  );
  // The replay after the snapshot may arrive in later reads: wait until the client has at
  // least what the session had produced when it attached.
  const produced = (await agent.request('GET', `/v1/sessions/${sessionId}`)).body.offset as number;
  const from = client.attached?.offset as number;
  await client.waitFor(() => from + client.streamLength >= produced, 'the replay');
  return client;
}

function clientAwaitingSnapshot(client: TerminalClient): boolean {
  const attached = client.attached;
  return attached !== undefined && client.snapshot.length < (attached.snapshotBytes as number);
}

/** Renders bytes into a fresh headless terminal and returns its visible lines. */
export async function renderScreen(
  chunks: Uint8Array[],
  cols: number,
  rows: number,
): Promise<{ lines: string[]; bufferType: string; cursor: [number, number] }> {
  const term = new headless.Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
  for (const chunk of chunks) await new Promise<void>((resolve) => term.write(chunk, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < rows; y++) {
    lines.push(buffer.getLine(buffer.viewportY + y)?.translateToString(true) ?? '');
  }
  const result = {
    lines,
    bufferType: buffer.type,
    cursor: [buffer.cursorY, buffer.cursorX] as [number, number],
  };
  term.dispose();
  return result;
}

/** Renders bytes into a terminal with ample scrollback and returns every line, oldest first. */
export async function renderText(chunks: Uint8Array[], cols: number, rows: number) {
  const term = new headless.Terminal({ cols, rows, scrollback: 100000, allowProposedApi: true });
  for (const chunk of chunks) await new Promise<void>((resolve) => term.write(chunk, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < buffer.length; y++) {
    lines.push(buffer.getLine(y)?.translateToString(true) ?? '');
  }
  term.dispose();
  return lines;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` until `check` accepts its value. */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(50);
  }
}
