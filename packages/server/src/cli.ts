#!/usr/bin/env node
import { ConfigError, loadConfig } from './config.js';
import { startServer } from './server.js';

const USAGE = `usage: snapvm serve

Starts the SnapVM server. Configuration comes from the environment
(SNAPVM_LISTEN, SNAPVM_DATA_DIR, DATABASE_URL, SNAPVM_URL, SNAPVM_APPS_DOMAIN, ...);
see docs/configuration.md.`;

async function serve(): Promise<void> {
  const config = loadConfig();
  const server = await startServer(config);
  const engine =
    server.db.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL';
  process.stdout.write(
    `SnapVM is listening on ${server.url} (public URL ${config.publicUrl}, ${engine})\n`,
  );
  let signals = 0;
  const shutDown = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(1);
    }
    process.stdout.write(`${signal}: finishing in-flight requests, then closing the database\n`);
    server.stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
}

const command = process.argv[2];
if (command === 'serve') {
  serve().catch((err: unknown) => {
    const message = err instanceof ConfigError ? err.message : (err as Error).stack;
    process.stderr.write(`snapvm: could not start: ${message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write(`${USAGE}\n`);
  process.exit(command === '--help' || command === 'help' ? 0 : 2);
}
