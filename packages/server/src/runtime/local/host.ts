// Small helpers for running host tools (mount, ip, nft, nsenter) and reading /proc.
import { readFileSync, readlinkSync } from 'node:fs';
import { RuntimeError } from '../driver.js';
import { toolSpawner } from './tool-spawner.js';

/** Host tools get a fixed, minimal environment: the server's own (database URL, secrets) stays out. */
export const hostToolEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/** Quotes a value for a POSIX shell command line. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a host tool with `hostToolEnv` and collects its output. It is spawned by the small tool
 * helper process (tool-spawner.ts), not by the server itself, whose forks are slow.
 */
export async function runTool(
  command: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const result = await toolSpawner.run({
    command,
    args,
    env: hostToolEnv,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  if (result.error !== undefined) throw new Error(`${command}: ${result.error}`);
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/** Starts a host tool on its own (new session, no stdio) and returns its pid. */
export async function startDetachedTool(command: string, args: readonly string[]): Promise<number> {
  const result = await toolSpawner.run({
    command,
    args,
    env: hostToolEnv,
    timeoutMs: 0,
    mode: 'detached',
  });
  if (result.pid === undefined) throw new Error(`${command}: ${result.error ?? 'no pid'}`);
  return result.pid;
}

/** Runs a shell script with `set -eu`; a failing step rejects with the step's own error. */
export async function runScript(script: string, what: string, args: string[] = []): Promise<void> {
  const result = await runTool('sh', ['-c', `set -eu\n${script}`, 'snapvm', ...args]);
  if (result.code !== 0) {
    throw new RuntimeError(
      `${what} failed: ${result.stderr.trim() || `exit ${result.code}`}`,
      'failed',
    );
  }
}

export function assertLocalHostSupported(): void {
  if (process.platform !== 'linux') {
    throw new RuntimeError(
      `the local runtime needs Linux (namespaces, cgroups, overlayfs); this is ${process.platform}`,
      'unsupported_host',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new RuntimeError(
      'the local runtime needs root to create namespaces, cgroups, mounts and network links: run the server as root',
      'unsupported_host',
    );
  }
}

export function namespaceId(pid: number, ns: 'user' | 'pid' | 'net' | 'mnt'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

/** The fields of /proc/PID/stat from field 3 (the state) on; undefined once it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether a process exists and has not exited (a zombie waits only to be reaped). */
export function isRunning(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Field 22 of /proc/PID/stat: distinguishes a process from a later one that reuses its PID. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** The PID a process has in each nested PID namespace, outermost first. */
export function namespacePids(pid: number): number[] {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
    return line ? line.slice(6).trim().split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text ? text.split(' ').map(Number) : [];
  } catch {
    return [];
  }
}

/** Mount points at or below `dir`, in the order they were mounted. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
    .filter((path) => path === dir || path.startsWith(prefix));
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export async function waitUntil(
  check: () => boolean,
  timeoutMs: number,
  intervalMs = 2,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
