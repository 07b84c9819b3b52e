import { type ChildProcess, spawn } from 'node:child_process';
import type { ExecResult } from '@snapvm/protocol';
import type { ActivityTracker } from '../activity.js';
import { buildChildEnv } from '../child-env.js';
import { HttpError } from '../http/errors.js';
import { isDirectory, resolveCommand } from '../process/resolve-command.js';

export interface ExecOptions {
  command: string[];
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface StartedExec {
  child: ChildProcess;
  /** Resolves with how the process ended; a timeout kills its whole process group. */
  done: Promise<{ exitCode: number | null; signal: string | null; timedOut: boolean }>;
  kill(signal: NodeJS.Signals): void;
}

/** Spawns a command without a PTY in its own process group. Validation errors (unknown
 * program, missing cwd) are 422s naming the field. */
export function startExec(options: ExecOptions, activity: ActivityTracker): StartedExec {
  const env = buildChildEnv(options.env);
  const [program, ...args] = options.command as [string, ...string[]];
  const resolved = resolveCommand(program, env.PATH);
  if (!resolved) {
    throw new HttpError(422, 'command_not_found', `${program} is not an executable`, 'command');
  }
  const cwd = options.cwd ?? env.HOME ?? '/';
  if (!isDirectory(cwd))
    throw new HttpError(422, 'cwd_not_found', `${cwd} is not a directory`, 'cwd');
  const child = spawn(resolved, args, {
    cwd,
    env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    argv0: program,
  });
  // A child that exits before reading its stdin makes our write fail with EPIPE; the exit
  // status is what matters then.
  child.stdin?.on('error', () => {});
  const kill = (signal: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const handle = { kill };
  activity.execs.add(handle);
  activity.touch();
  let timedOut = false;
  const timer = options.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        kill('SIGKILL');
      }, options.timeoutMs)
    : null;
  const done = new Promise<{ exitCode: number | null; signal: string | null; timedOut: boolean }>(
    (resolve) => {
      let settled = false;
      const finish = (exitCode: number | null, signal: string | null) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        activity.execs.delete(handle);
        activity.touch();
        resolve({ exitCode, signal, timedOut });
      };
      child.once('error', () => finish(127, null));
      // 'close' waits for stdout and stderr to drain, so no output is lost.
      child.once('close', (code, signal) => finish(code, signal));
    },
  );
  return { child, done, kill };
}

/** Collects a stream up to `cap` bytes, remembering whether anything was dropped. */
class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Runs a command to completion; `abort` (the caller went away) kills its process group. */
export async function runExec(
  options: ExecOptions & { stdin?: string; maxOutputBytes: number },
  activity: ActivityTracker,
  abort?: AbortSignal,
): Promise<ExecResult> {
  const started = performance.now();
  const exec = startExec(options, activity);
  abort?.addEventListener('abort', () => exec.kill('SIGKILL'), { once: true });
  const stdout = new CappedBuffer(options.maxOutputBytes);
  const stderr = new CappedBuffer(options.maxOutputBytes);
  exec.child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  exec.child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  exec.child.stdin?.end(options.stdin ?? '');
  const { exitCode, signal, timedOut } = await exec.done;
  return {
    exitCode,
    signal,
    timedOut,
    stdout: stdout.text(),
    stderr: stderr.text(),
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    durationMs: Math.round(performance.now() - started),
  };
}
