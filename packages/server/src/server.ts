import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from './app.js';
import type { LoginLimits } from './auth/login-limiter.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { openDatabase } from './db/open-database.js';
import { createMachineLifecycle, type MachineLifecycle } from './lifecycle/machine-lifecycle.js';

export interface RunningServer {
  app: FastifyInstance;
  db: Database;
  /** Present unless SNAPVM_LIFECYCLE=off. */
  lifecycle: MachineLifecycle | null;
  /** The address actually bound (the port may have been 0). */
  url: string;
  /** Stops accepting, lets in-flight requests finish, then closes the database. */
  stop(): Promise<void>;
}

export async function startServer(
  config: Config,
  options: { loginLimits?: LoginLimits; logStream?: NodeJS.WritableStream } = {},
): Promise<RunningServer> {
  const db = await openDatabase(config);
  let app: FastifyInstance;
  let lifecycle: MachineLifecycle | null = null;
  try {
    if (config.lifecycle.enabled) {
      const log = pino(
        { level: config.logLevel, name: 'lifecycle' },
        options.logStream ?? process.stdout,
      );
      lifecycle = createMachineLifecycle(config.lifecycle, config.dataDir, db, log);
    }
    app = await buildApp({ config, db, lifecycle, ...options });
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await lifecycle?.close();
    await db.close();
    throw err;
  }
  // Adoption of what runs on the host happens in the background: requests are served
  // meanwhile, and a machine being reconciled simply answers with its current state.
  void lifecycle?.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let stopping: Promise<void> | null = null;
  return {
    app,
    db,
    lifecycle,
    url: `${config.tls.mode === 'off' ? 'http' : 'https'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    stop() {
      stopping ??= app
        .close()
        .finally(() => lifecycle?.close())
        .finally(() => db.close());
      return stopping;
    },
  };
}
