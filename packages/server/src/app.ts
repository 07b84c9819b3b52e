import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { AppDeps } from './api/deps.js';
import { handleError } from './api/error-handler.js';
import { checkOrigin } from './api/origin-check.js';
import { registerAuthRoutes } from './api/routes/auth-routes.js';
import { registerMachineRoutes } from './api/routes/machine-routes.js';
import { registerOrgRoutes } from './api/routes/org-routes.js';
import { LoginLimiter, type LoginLimits } from './auth/login-limiter.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import type { MachineLifecycle } from './lifecycle/machine-lifecycle.js';
import { registerMetrics } from './metrics/metrics.js';

export interface AppOptions {
  config: Config;
  db: Database;
  /** Machines run (reconciler, idle, wake); without it they are records only. */
  lifecycle?: MachineLifecycle | null;
  loginLimits?: LoginLimits;
  /** A pino destination for the logs; stdout when omitted. */
  logStream?: NodeJS.WritableStream;
}

// Secrets travel in these; request logs must never show them.
function redactUrl(url: string): string {
  return url.replace(/(\/invitations\/)[^/?]+/, '$1[redacted]');
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config, db } = options;
  const logger: FastifyServerOptions['logger'] = {
    level: config.logLevel,
    redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
    serializers: {
      req: (req) => ({
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.ip,
      }),
    },
    ...(options.logStream ? { stream: options.logStream } : {}),
  };
  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs * 2,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: 'not_found',
        message: `There is no ${request.method} ${redactUrl(request.url)}.`,
      },
    }),
  );

  await app.register(swagger, {
    openapi: {
      info: { title: 'SnapVM API', version: '1' },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'snapvm_session' },
          token: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ session: [] }, { token: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const registry = registerMetrics(app, () => db.stats());
  app.addHook('onRequest', async (request) => checkOrigin(request, config.publicUrl));

  const deps: AppDeps = {
    config,
    db,
    limiter: new LoginLimiter(
      options.loginLimits ?? { perAccount: 5, perIp: 30, windowSeconds: 900 },
    ),
    machineSettings: {
      publicUrl: config.publicUrl,
      appsDomain: config.appsDomain,
      defaultRegion: 'local',
      idleSuspendSeconds: config.lifecycle.idleSuspendSeconds,
      idleStopSeconds: config.lifecycle.idleStopSeconds,
    },
    lifecycle: options.lifecycle ?? null,
  };
  const api = app.withTypeProvider<ZodTypeProvider>();
  registerAuthRoutes(api, deps);
  registerOrgRoutes(api, deps);
  registerMachineRoutes(api, deps);

  const hidden = { schema: { hide: true } };
  app.get('/healthz', hidden, async () => ({ status: 'ok' }));
  app.get('/readyz', hidden, async (_request, reply) => {
    try {
      await Promise.race([
        db.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
      ]);
      return { status: 'ready' };
    } catch {
      return reply
        .status(503)
        .send({ error: { code: 'not_ready', message: 'The database is not reachable.' } });
    }
  });
  app.get('/metrics', hidden, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  app.get('/api/v1/openapi.json', hidden, async () => app.swagger());
  return app;
}
