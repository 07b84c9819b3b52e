#!/usr/bin/env node
// snapvm-agent entry point. In a machine it runs under tini (PID 1), which reaps orphans;
// the agent itself waits for its own children and handles SIGTERM/SIGINT by shutting down.
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

// The bundle is one file, so it is also the screen-model workers' entry point.
if (isMainThread) {
  main().catch((err: Error) => {
    log('error', 'agent failed to start', { err: err.stack });
    process.exit(1);
  });
} else {
  await import('./sessions/screen-worker.js');
}
