// A small helper process that runs host tools (mount helpers, ip, nft, umount) for the server.
//
// Why: node's spawn forks the whole server, and fork copies its page tables: on a server with a
// few hundred MiB resident (the embedded database, caches) each spawn blocked the event loop for
// ~20 ms on a slow host, several times per machine start. This process stays small, so its forks
// cost a few milliseconds, and the server only sends it a message. If it cannot be used (it
// died, or could not start), tools run from the server as before.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ToolRequest {
  id: number;
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  input?: string;
  timeoutMs: number;
  /** Started on its own (setsid, no stdio), not waited for: the answer is its pid. */
  detached?: boolean;
}

export interface ToolResult {
  id: number;
  code: number | null;
  stdout: string;
  stderr: string;
  pid?: number;
  error?: string;
}

/** Runs one request where this code runs: in the helper, or in the server as the fallback. */
export function runHere(request: ToolRequest, reply: (result: ToolResult) => void): void {
  const { id } = request;
  if (request.detached) {
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
    return new Promise((resolve) => {
      const id = this.nextId++;
      const full: ToolRequest = { ...request, id };
      const child = this.helper();
      if (!child) return runHere(full, resolve);
      this.pending.set(id, resolve);
      child.channel?.ref();
      child.send(full, (err) => {
        if (!err || !this.pending.delete(id)) return;
        this.settle();
        runHere(full, resolve);
      });
    });
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
    child.on('message', (result: ToolResult) => {
      const resolve = this.pending.get(result.id);
      if (!resolve) return;
      this.pending.delete(result.id);
      this.settle();
      resolve(result);
    });
    child.on('error', () => {});
    child.once('exit', () => {
      if (this.child !== child) return;
      this.child = null;
      // Whether the tools of the requests in flight ran is unknown: they fail, and are not
      // run twice. Later requests start a new helper.
      for (const [id, resolve] of this.pending)
        resolve({ id, code: null, stdout: '', stderr: '', error: 'the tool helper exited' });
      this.pending.clear();
    });
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  /** The helper keeps the server alive only while it has work. */
  private settle(): void {
    if (this.pending.size === 0) this.child?.channel?.unref();
  }
}

export const toolSpawner = new ToolSpawner();
