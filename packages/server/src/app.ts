import { timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
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
import { bearerToken } from './api/request-context.js';
import { registerAuthRoutes } from './api/routes/auth-routes.js';
import { registerMachineRoutes } from './api/routes/machine-routes.js';
import { registerOrgRoutes } from './api/routes/org-routes.js';
import { LoginLimiter, type LoginLimits } from './auth/login-limiter.js';
import { hashSecret } from './auth/secrets.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { AppAuth, loadAppKey } from './gateway/app-auth.js';
import { registerAppAuthRoutes } from './gateway/app-auth-routes.js';
import { AppGateway } from './gateway/app-gateway.js';
import { AppRelay } from './gateway/app-relay.js';
import { registerConsoleAssets } from './gateway/console-assets.js';
import { serverFactory } from './gateway/http-server.js';
import { MachineAgents } from './gateway/machine-agents.js';
import { registerSessionRoutes } from './gateway/session-routes.js';
import { loadTls } from './gateway/tls.js';
import type { MachineLifecycle } from './lifecycle/machine-lifecycle.js';
import { registerMetrics } from './metrics/metrics.js';
import { registerServiceRoutes } from './services/service-routes.js';

/** How long a client connection may sit between requests (Node's keepAliveTimeout). */
const KEEP_ALIVE_MS = 72_000;

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
  const tls = await loadTls(config.tls, {
    dataDir: config.dataDir,
    publicHost: new URL(config.publicUrl).hostname,
    appsDomain: config.appsDomain,
  });
  let gateway: AppGateway | null = null;
  const relay = new AppRelay({
    gateway: () => gateway,
    keepAliveTimeoutMs: KEEP_ALIVE_MS,
    native: tls === null,
  });
  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs * 2,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    serverFactory: serverFactory({
      tls,
      connectionTimeoutMs: config.requestTimeoutMs * 2,
      keepAliveTimeoutMs: KEEP_ALIVE_MS,
      gateway: () => gateway,
      relay,
    }),
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

  const registry = registerMetrics(
    app,
    () => db.stats(),
    () => relay.relayed(),
  );
  // After the server's own connections are done: the native relay's are not the server's.
  app.addHook('onClose', () => relay.stop(10_000));
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
    },
    lifecycle: options.lifecycle ?? null,
  };
  await app.register(websocket, { options: { maxPayload: 1024 * 1024, perMessageDeflate: false } });
  const agents = new MachineAgents(deps.lifecycle, db, app.log);
  const appAuth = new AppAuth(await loadAppKey(config.dataDir, config.gateway.appKey), db);
  const api = app.withTypeProvider<ZodTypeProvider>();
  registerAuthRoutes(api, deps);
  registerOrgRoutes(api, deps);
  registerMachineRoutes(api, deps);
  registerSessionRoutes(api, deps, agents, { heartbeatMs: config.gateway.heartbeatMs });
  registerServiceRoutes(api, deps, agents);
  registerAppAuthRoutes(api, deps, appAuth);
  gateway = new AppGateway({
    db,
    agents,
    auth: appAuth,
    publicUrl: config.publicUrl,
    appsDomain: config.appsDomain,
    trustProxy: config.trustProxy,
    tls: tls !== null,
    holdMs: config.gateway.holdMs,
    navigationHoldMs: config.gateway.navigationHoldMs,
    log: () => app.log,
  });

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
  // Off unless a token is set: behind the usual reverse proxy every path of this port is
  // public, and the figures describe the whole deployment.
  app.get('/metrics', hidden, async (request, reply) => {
    if (!config.metricsToken)
      return reply.status(404).send({
        error: { code: 'not_found', message: 'Metrics are off: set SNAPVM_METRICS_TOKEN.' },
      });
    if (!bearerMatches(bearerToken(request), config.metricsToken))
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer')
        .send({
          error: {
            code: 'unauthorized',
            message: 'Send the metrics token as "Authorization: Bearer <SNAPVM_METRICS_TOKEN>".',
          },
        });
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  app.get('/api/v1/openapi.json', hidden, async () => app.swagger());
  // A machine's URL access or port changed: its machine host decides afresh right away.
  app.addHook('onResponse', async (request, reply) => {
    if (request.method === 'PATCH' && reply.statusCode < 300) gateway?.forget();
  });
  if (config.gateway.consoleDir) registerConsoleAssets(app, config.gateway.consoleDir);
  return app;
}

/** Constant-time: digests of equal length, whatever was sent. */
function bearerMatches(given: string | null, token: string): boolean {
  return timingSafeEqual(Buffer.from(hashSecret(given ?? '')), Buffer.from(hashSecret(token)));
}
