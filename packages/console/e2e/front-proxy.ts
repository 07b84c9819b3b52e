import { existsSync, readFileSync, statSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { extname, join, normalize } from 'node:path';

// A test-only front door on one origin, for what the server does not do yet:
// - serves the built console (dist/) with the SPA fallback to index.html;
// - forwards /api/** (HTTP) to the real server;
// - stands in for the gateway to the machine (issue 5): the session and service endpoints
//   /api/v1/orgs/:org/machines/:machine/{sessions,services}/** go to a real agent's /v1/...,
//   and a WebSocket upgrade on .../sessions/:id/attach is piped to the agent's
//   /v1/sessions/:id/attach, with the agent token added and the browser's cookie removed, as
//   the gateway will do.
// It records every attach request and can cut live terminal sockets to simulate a drop.

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
  '.png': 'image/png',
};

const AGENT_PATH = /^\/api\/v1\/orgs\/[^/]+\/machines\/[^/]+\/((?:sessions|services)(?:\/.*)?)$/;
const ATTACH_PATH = /^\/api\/v1\/orgs\/[^/]+\/machines\/[^/]+\/sessions\/([^/]+)\/attach$/;

export interface AgentTarget {
  host: string;
  port: number;
  token: string;
}

export interface FrontProxy {
  url: string;
  /** Query strings of every terminal attach, in order (e.g. "offset=120&cols=80&rows=24"). */
  attaches: string[];
  /** Cuts every live terminal WebSocket, as a network drop would. */
  dropTerminals: () => void;
  close: () => Promise<void>;
}

export async function startFrontProxy(options: {
  distDir: string;
  api: { host: string; port: number };
  agent?: AgentTarget | undefined;
  port: number;
}): Promise<FrontProxy> {
  const attaches: string[] = [];
  const terminalSockets = new Set<Socket>();
  const indexHtml = readFileSync(join(options.distDir, 'index.html'));

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://front');
    const agentRoute = url.pathname.match(AGENT_PATH);
    if (agentRoute && options.agent) {
      const headers = { ...req.headers, authorization: `Bearer ${options.agent.token}` };
      delete headers.cookie;
      forwardHttp(req, res, options.agent, `/v1/${agentRoute[1]}${url.search}`, headers);
      return;
    }
    if (url.pathname.startsWith('/api/') || ['/healthz', '/readyz'].includes(url.pathname)) {
      // Host stays the browser's, so cookies and the server's origin checks see the front.
      forwardHttp(req, res, options.api, req.url ?? '/', req.headers);
      return;
    }
    const file = normalize(join(options.distDir, decodeURIComponent(url.pathname)));
    if (file.startsWith(options.distDir) && existsSync(file) && statSync(file).isFile()) {
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(200, { 'content-type': TYPES['.html'] as string });
    res.end(indexHtml);
  });

  server.on('upgrade', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://front');
    const attach = url.pathname.match(ATTACH_PATH);
    let target: { host: string; port: number };
    let path: string;
    const headers: Record<string, string | string[] | undefined> = { ...req.headers };
    if (attach && options.agent) {
      attaches.push(url.searchParams.toString());
      target = options.agent;
      path = `/v1/sessions/${attach[1]}/attach${url.search}`;
      headers.authorization = `Bearer ${options.agent.token}`;
      delete headers.cookie;
      terminalSockets.add(client);
      client.once('close', () => terminalSockets.delete(client));
    } else {
      target = options.api;
      path = req.url ?? '/';
    }
    const upstream = connect(target.port, target.host, () => {
      const lines = [`GET ${path} HTTP/1.1`];
      for (const [name, value] of Object.entries(headers)) {
        if (name === 'host') continue;
        for (const one of Array.isArray(value) ? value : [value]) {
          if (one !== undefined) lines.push(`${name}: ${one}`);
        }
      }
      lines.push(`host: ${target.host}:${target.port}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
    upstream.on('close', end);
    client.on('close', end);
  });

  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    attaches,
    dropTerminals: () => {
      for (const socket of terminalSockets) socket.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of terminalSockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  target: { host: string; port: number },
  path: string,
  headers: IncomingMessage['headers'],
): void {
  const upstream = request(
    { host: target.host, port: target.port, method: req.method, path, headers },
    (response) => {
      res.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
}
