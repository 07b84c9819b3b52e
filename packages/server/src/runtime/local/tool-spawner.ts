// A small helper process that runs host tools (mount helpers, ip, nft, umount) for the server.
//
// Why: node's spawn forks the whole server, and fork copies its page tables: on a server with a
// few hundred MiB resident (the embedded database, caches) each spawn blocked the event loop for
// ~20 ms on a slow host, several times per machine start. This process stays small, so its forks
// cost a few milliseconds, and the server only sends it a message. If it cannot be used (it
// died, or could not start), tools run from the server as before.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export interface ToolRequest {
  id: number;
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  input?: string;
  timeoutMs: number;
  /**
   * Started on its own (setsid), not waited for: the first answer is its pid. `detached`: no
   * stdio. `gated`: stdout and stderr to the file `log`, and fd 3 a pipe that `gate` writes
   * to and closes; a second answer (`exited`) says when it ends.
   */
  mode?: 'detached' | 'gated';
  log?: string;
  /** Instead of a command: write this to the gate of the gated process `gatePid`, close it. */
  gate?: string;
  gatePid?: number;
}

export interface ToolResult {
  id: number;
  code: number | null;
  stdout: string;
  stderr: string;
  pid?: number;
  exited?: boolean;
  error?: string;
}

/** Gated processes started here, by pid, until their gate is written and they exit. */
const gated = new Map<number, ChildProcess>();

function startGated(request: ToolRequest, reply: (result: ToolResult) => void): void {
  const { id } = request;
  const log = openSync(request.log ?? '/dev/null', 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(request.command, request.args, {
      detached: true,
      stdio: ['ignore', log, log, 'pipe'],
      env: request.env,
    });
  } catch (err) {
    reply({ id, code: null, stdout: '', stderr: '', error: (err as Error).message });
    return;
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (!pid) {
    child.on('error', () => {});
    reply({ id, code: null, stdout: '', stderr: '', error: `could not spawn ${request.command}` });
    return;
  }
  // Its reader may be gone already (a machine that failed to start): a reset is no news.
  child.stdio[3]?.on('error', () => {});
  gated.set(pid, child);
  child.once('exit', (code) => {
    gated.delete(pid);
    child.stdio[3]?.destroy();
    reply({ id, code, stdout: '', stderr: '', pid, exited: true });
  });
  child.unref();
  reply({ id, code: null, stdout: '', stderr: '', pid });
}

/** Runs one request where this code runs: in the helper, or in the server as the fallback. */
export function runHere(request: ToolRequest, reply: (result: ToolResult) => void): void {
  const { id } = request;
  if (request.gate !== undefined) {
    const gate = gated.get(request.gatePid ?? 0)?.stdio[3] as Writable | undefined;
    gate?.end(request.gate);
    reply({ id, code: 0, stdout: '', stderr: '' });
    return;
  }
  if (request.mode === 'gated') {
    startGated(request, reply);
    return;
  }
  if (request.mode === 'detached') {
    try {
      const child = spawn(request.command, request.args, {
        stdio: 'ignore',
        detached: true,
        env: request.env,
      });
      child.on('error', () => {});
      child.unref();
      reply(
        child.pid
          ? { id, code: null, stdout: '', stderr: '', pid: child.pid }
          : { id, code: null, stdout: '', stderr: '', error: `could not spawn ${request.command}` },
      );
    } catch (err) {
      reply({ id, code: null, stdout: '', stderr: '', error: (err as Error).message });
    }
    return;
  }
  const child = spawn(request.command, request.args, {
    env: request.env,
    stdio: [request.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: request.timeoutMs,
    killSignal: 'SIGKILL',
  });
  let stdout = '';
  let stderr = '';
  let done = false;
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  child.on('error', (err) => {
    if (done) return;
    done = true;
    reply({ id, code: null, stdout, stderr, error: err.message });
  });
  child.on('close', (code) => {
    if (done) return;
    done = true;
    reply({ id, code, stdout, stderr });
  });
  if (child.stdin) {
    // A tool that exits without reading its input must not crash the process with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(request.input);
  }
}

export interface GatedProcess {
  pid: number;
  /** Writes `data` to the process's fd 3 and closes it (`''`: just closes it). */
  openGate(data: string): Promise<void>;
  /** Stops listening for its exit. */
  release(): void;
}

const helperPath = fileURLToPath(new URL('./tool-spawner-process.js', import.meta.url));

/** The server's side: one helper per process, started on first use (or by `warm`). */
class ToolSpawner {
  private child: ChildProcess | null = null;
  private failed = false;
  private nextId = 1;
  private readonly pending = new Map<number, (result: ToolResult) => void>();

  /** Starts the helper ahead of the first request (it is a node process: ~0.1 s of CPU). */
  warm(): void {
    this.helper();
  }

  run(request: Omit<ToolRequest, 'id'>): Promise<ToolResult> {
    return new Promise((resolve) => this.send(request, resolve));
  }

  /**
   * Starts a gated process (see ToolRequest); until `release`, `onExit` is called when it
   * ends, or when the helper that started it exits (it can no longer tell).
   */
  async startGated(
    request: Omit<ToolRequest, 'id' | 'mode'>,
    onExit: () => void,
  ): Promise<GatedProcess> {
    let id = 0;
    const started = await new Promise<ToolResult>((resolve) => {
      let first = true;
      id = this.send(
        { ...request, mode: 'gated' },
        (result) => {
          if (!first) return onExit();
          first = false;
          resolve(result);
        },
        true,
      );
    });
    const pid = started.pid;
    if (started.error !== undefined || pid === undefined)
      throw new Error(`${request.command}: ${started.error ?? 'no pid'}`);
    return {
      pid,
      openGate: async (data) => {
        await this.run({ command: '', args: [], env: {}, timeoutMs: 0, gate: data, gatePid: pid });
      },
      // A started machine outlives the server: its end must not keep the server's loop alive.
      release: () => this.forget(id),
    };
  }

  private send(
    request: Omit<ToolRequest, 'id'>,
    handle: (result: ToolResult) => void,
    untilExit = false,
  ): number {
    const id = this.nextId++;
    const full: ToolRequest = { ...request, id };
    const done = untilExit
      ? (result: ToolResult) => {
          if (result.exited || result.error !== undefined) this.forget(id);
          handle(result);
        }
      : (result: ToolResult) => {
          this.forget(id);
          handle(result);
        };
    const child = this.helper();
    if (!child) {
      runHere(full, handle);
      return id;
    }
    this.pending.set(id, done);
    child.channel?.ref();
    child.send(full, (err) => {
      if (!err || !this.pending.has(id)) return;
      this.forget(id);
      runHere(full, handle);
    });
    return id;
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.child?.channel?.unref();
  }

  private helper(): ChildProcess | null {
    if (this.child || this.failed) return this.child;
    let child: ChildProcess;
    try {
      child = fork(helperPath, [], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        // The server's environment (database URL, secrets) has no business there; each request
        // carries the environment its tool gets.
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        execArgv: [],
        serialization: 'json',
      });
    } catch {
      this.failed = true;
      return null;
    }
    child.on('message', (result: ToolResult) => this.pending.get(result.id)?.(result));
    child.on('error', () => {});
    child.once('exit', () => {
      if (this.child !== child) return;
      this.child = null;
      // Whether the tools of the requests in flight ran is unknown: they fail, and are not
      // run twice. Later requests start a new helper.
      for (const [id, handle] of [...this.pending])
        handle({ id, code: null, stdout: '', stderr: '', error: 'the tool helper exited' });
      this.pending.clear();
    });
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }
}

export const toolSpawner = new ToolSpawner();
