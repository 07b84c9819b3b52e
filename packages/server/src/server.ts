import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { LoginLimits } from './auth/login-limiter.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { openDatabase } from './db/open-database.js';

export interface RunningServer {
  app: FastifyInstance;
  db: Database;
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
  try {
    app = await buildApp({ config, db, ...options });
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await db.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let stopping: Promise<void> | null = null;
  return {
    app,
    db,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    stop() {
      stopping ??= app.close().finally(() => db.close());
      return stopping;
    },
  };
}
