// The agent as a program: configuration from the environment, the start gate, signals. In a
// machine it runs under tini (PID 1), which reaps orphans; the agent itself waits for its own
// children and handles SIGTERM/SIGINT by shutting down. main.ts runs it as a module (the
// package's bin); the bundle's loader (scripts/bundle.mjs) runs it from the bundled script.
import { closeSync, readSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { startAgent } from './agent.js';
import { ConfigError, loadConfig } from './config.js';
import { log } from './log.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`snapvm-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // In a machine the agent is started before the host has wired the network, so that loading
  // it overlaps that work; services start and requests are served only once the gate opens.
  if (config.startGateFd !== null) waitForStartGate(config.startGateFd);
  if (process.pid === 1) {
    log(
      'warn',
      'running as PID 1 without an init: orphaned processes will not be reaped; run under tini',
    );
  }
  const agent = await startAgent(config);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('info', 'shutting down', { signal });
    agent.close().then(
      () => process.exit(0),
      (err: Error) => {
        log('error', 'shutdown failed', { err: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A terminal-less daemon has no use for SIGHUP; ignoring it keeps a stray one harmless.
  process.on('SIGHUP', () => {});
}

/** Blocks until the host writes a line to the gate, or closes it (it went away: go on). */
function waitForStartGate(fd: number): void {
  const buffer = Buffer.alloc(64);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  try {
    for (;;) {
      let read: number;
      try {
        read = readSync(fd, buffer, 0, buffer.length, null);
      } catch (err) {
        // The host's end is a blocking socket, but a non-blocking one must not spin.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(pause, 0, 0, 2);
        continue;
      }
      if (read === 0 || buffer.subarray(0, read).includes(0x0a)) break;
    }
  } catch (err) {
    log('warn', 'could not read the start gate; starting without it', {
      err: (err as Error).message,
    });
  } finally {
    // Closed before any child is spawned, so no user process inherits it.
    try {
      closeSync(fd);
    } catch {}
  }
}

/** The agent in the main thread; a screen-model worker in a worker thread (the bundle is one
 * script, so it is also the workers' entry point). */
export async function runAgentProcess(): Promise<void> {
  if (!isMainThread) {
    await import('./sessions/screen-worker.js');
    return;
  }
  await main().catch((err: Error) => {
    log('error', 'agent failed to start', { err: err.stack });
    process.exit(1);
  });
}
