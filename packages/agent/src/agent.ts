import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  AGENT_CLOSE_CODES,
  type AgentActivity,
  type AgentHealth,
  attachQuerySchema,
  execRequestSchema,
  serviceLogsQuerySchema,
  sessionHistoryQuerySchema,
} from '@snapvm/protocol';
import { WebSocketServer } from 'ws';
import { ActivityTracker } from './activity.js';
import type { AgentConfig } from './config.js';
import { runExec } from './exec/exec-runner.js';
import { handleExecSocket } from './exec/exec-socket.js';
import { createTokenCheck, type TokenSource } from './http/auth.js';
import { readJsonBody } from './http/body.js';
import { HttpError, notFound, parseOrThrow, sendError, sendJson } from './http/errors.js';
import { log } from './log.js';
import { proxyHttp, proxyUpgrade, writeRawError } from './proxy/port-proxy.js';
import { openTunnel } from './proxy/port-tunnel.js';
import { ServiceManager } from './services/service-manager.js';
import { handleAttachSocket } from './sessions/attach-socket.js';
import { SessionManager } from './sessions/session-manager.js';

export const AGENT_VERSION = '0.1.0';

export interface RunningAgent {
  /** The TCP port, or null on a unix socket. */
  port: number | null;
  sessions: SessionManager;
  services: ServiceManager;
  /** Graceful shutdown: refuse new work, end sessions, stop services in reverse order. */
  close(): Promise<void>;
}

const query = (url: URL) => Object.fromEntries(url.searchParams);

function pathParts(url: URL): string[] {
  try {
    return url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new HttpError(400, 'invalid_path', 'the path has a malformed %-escape', 'path');
  }
}

/** Starts the agent: restores services, then serves HTTP and WebSocket on the configured
 * socket or port. */
export async function startAgent(config: AgentConfig): Promise<RunningAgent> {
  const activity = new ActivityTracker();
  const sessions = new SessionManager(config, activity);
  const services = new ServiceManager(config);
  await services.startAll();
  const checkToken = createTokenCheck(config.token);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const startedAt = Date.now();

  const health = (): AgentHealth => ({
    status: 'ok',
    version: AGENT_VERSION,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
  });

  const describeActivity = (): AgentActivity => {
    const s = sessions.counts();
    const reasons: string[] = [];
    if (s.attachedClients > 0) reasons.push(`${s.attachedClients} terminal client(s) attached`);
    if (activity.runningExecs > 0) reasons.push(`${activity.runningExecs} exec(s) running`);
    if (activity.proxyConnections > 0) {
      reasons.push(`${activity.proxyConnections} proxied connection(s) open`);
    }
    return {
      busy: reasons.length > 0,
      reasons,
      sessions: s,
      execs: { running: activity.runningExecs },
      proxy: { openConnections: activity.proxyConnections },
      services: { running: services.runningCount() },
      lastInputAt: activity.lastInputAt?.toISOString() ?? null,
      lastOutputAt: activity.lastOutputAt?.toISOString() ?? null,
      lastActivityAt: activity.lastActivityAt.toISOString(),
    };
  };

  async function route(req: IncomingMessage, res: ServerResponse, token: TokenSource) {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = pathParts(url);
    const method = req.method ?? 'GET';
    if (parts[0] !== 'v1') throw notFound(`route ${url.pathname}`);
    const [, resource, id, action] = parts;
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) {
        res.setHeader('allow', methods.join(', '));
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here`);
      }
    };

    if (resource === 'proxy') return proxyHttp(req, res, token, activity);
    if (resource === 'tunnel')
      throw new HttpError(426, 'upgrade_required', 'a tunnel is opened with an Upgrade request');
    if (resource === 'health' && parts.length === 2) {
      allow('GET');
      return sendJson(res, 200, health());
    }
    if (resource === 'activity' && parts.length === 2) {
      allow('GET');
      return sendJson(res, 200, describeActivity());
    }
    if (resource === 'sessions') {
      if (parts.length === 2) {
        allow('GET', 'POST');
        if (method === 'GET') return sendJson(res, 200, { items: sessions.list() });
        const session = sessions.create(await readJsonBody(req));
        return sendJson(res, 201, session.describe());
      }
      if (parts.length === 3 && id) {
        allow('GET', 'DELETE');
        if (method === 'GET') return sendJson(res, 200, sessions.get(id).describe());
        await sessions.end(id);
        res.writeHead(204).end();
        return;
      }
      if (parts.length === 4 && id && action === 'history') {
        allow('GET');
        const session = sessions.get(id);
        const q = parseOrThrow(sessionHistoryQuerySchema, query(url), 'query');
        return sendJson(res, 200, await session.history(q.before ?? null, q.lines));
      }
      if (parts.length === 4 && id && action === 'attach') {
        sessions.get(id);
        throw new HttpError(426, 'upgrade_required', 'attach is a WebSocket endpoint');
      }
    }
    if (resource === 'services') {
      if (parts.length === 2) {
        allow('GET');
        return sendJson(res, 200, { items: services.list() });
      }
      if (parts.length === 3 && id) {
        allow('GET', 'PUT', 'DELETE');
        if (method === 'GET') return sendJson(res, 200, services.get(id));
        if (method === 'PUT') {
          const { created, service } = await services.put(id, await readJsonBody(req));
          return sendJson(res, created ? 201 : 200, service);
        }
        await services.remove(id);
        res.writeHead(204).end();
        return;
      }
      if (parts.length === 4 && id && action) {
        if (action === 'logs') {
          allow('GET');
          return streamLogs(id, url, req, res);
        }
        if (action === 'start' || action === 'stop' || action === 'restart') {
          allow('POST');
          return sendJson(res, 200, await services[action](id));
        }
      }
    }
    if (resource === 'exec' && parts.length === 2) {
      allow('POST');
      const request = parseOrThrow(execRequestSchema, await readJsonBody(req));
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableEnded) gone.abort();
      });
      return sendJson(res, 200, await runExec(request, activity, gone.signal));
    }
    throw notFound(`route ${url.pathname}`);
  }

  function streamLogs(name: string, url: URL, req: IncomingMessage, res: ServerResponse) {
    const { tail, follow } = parseOrThrow(serviceLogsQuerySchema, query(url), 'query');
    const serviceLog = services.logOf(name);
    const following = follow === '1' || follow === 'true';
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.write(serviceLog.tail(tail));
    if (!following) return res.end();
    const unfollow = serviceLog.follow((chunk) => res.write(chunk));
    req.socket.setTimeout(0);
    res.once('close', unfollow);
  }

  const server: Server = createServer((req, res) => {
    const token = checkToken(req.headers);
    if (!token) {
      sendError(res, new HttpError(401, 'unauthorized', 'a valid agent token is required'));
      return;
    }
    route(req, res, token).catch((err: unknown) => {
      // A refused request whose body was not read cannot leave the connection reusable.
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
      if (err instanceof HttpError) return sendError(res, err);
      log('error', 'request failed', {
        method: req.method,
        path: req.url?.split('?')[0],
        err: (err as Error).stack,
      });
      sendError(res, new HttpError(500, 'internal', 'the agent failed to handle this request'));
    });
  });
  // Long-lived streams (log follow, proxied downloads) must not be cut by idle timers.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const token = checkToken(req.headers);
    if (!token) {
      writeRawError(socket, new HttpError(401, 'unauthorized', 'a valid agent token is required'));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://agent');
    try {
      const parts = pathParts(url);
      if (parts[0] !== 'v1') throw notFound(`WebSocket route ${url.pathname}`);
      if (parts[1] === 'proxy') {
        proxyUpgrade(req, socket, head, token, activity);
        return;
      }
      if (parts[1] === 'tunnel') {
        openTunnel(req, socket, head, activity);
        return;
      }
      if (parts.length === 4 && parts[1] === 'sessions' && parts[3] === 'attach') {
        const session = sessions.get(parts[2] as string);
        const request = parseOrThrow(attachQuerySchema, query(url), 'query');
        wss.handleUpgrade(req, socket, head, (ws) => handleAttachSocket(ws, session, request));
        return;
      }
      if (parts.length === 2 && parts[1] === 'exec') {
        wss.handleUpgrade(req, socket, head, (ws) => handleExecSocket(ws, activity));
        return;
      }
      throw notFound(`WebSocket route ${url.pathname}`);
    } catch (err) {
      writeRawError(
        socket,
        err instanceof HttpError ? err : new HttpError(500, 'internal', 'upgrade failed'),
      );
    }
  });

  let address: string;
  let port: number | null = null;
  if (config.socketPath) {
    const path = config.socketPath;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // A socket file left by a previous run (killed, or a restored snapshot) blocks listen.
    if (existsSync(path)) unlinkSync(path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    address = path;
  } else {
    const listen = config.listen ?? { host: '127.0.0.1', port: 0 };
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    address = `${listen.host}:${port}`;
  }
  log('info', 'agent listening', { address, version: AGENT_VERSION });

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      server.close();
      for (const ws of wss.clients) ws.close(AGENT_CLOSE_CODES.shuttingDown, 'agent stopping');
      for (const exec of activity.execs) exec.kill('SIGKILL');
      await sessions.closeAll(AGENT_CLOSE_CODES.shuttingDown);
      await services.shutdown();
      server.closeAllConnections();
      if (config.socketPath && existsSync(config.socketPath)) unlinkSync(config.socketPath);
    })();
    return closing;
  };

  return { port, sessions, services, close };
}
