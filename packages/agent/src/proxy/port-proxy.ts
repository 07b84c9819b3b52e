import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import { AGENT_TOKEN_HEADER } from '@snapvm/protocol';
import type { ActivityTracker } from '../activity.js';
import type { TokenSource } from '../http/auth.js';
import { HttpError, sendError } from '../http/errors.js';

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
];

/** A port inside the machine as written in a path segment. */
export function parsePort(text: string | undefined): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text ?? '') || port < 1 || port > 65535) {
    throw new HttpError(400, 'invalid_port', 'port must be a number from 1 to 65535', 'port');
  }
  return port;
}

/** Splits `/v1/proxy/<port>/<rest>` into the port and the path to request inside. */
export function parseProxyTarget(url: string): { port: number; path: string } {
  const match = /^\/v1\/proxy\/([^/?]*)(.*)$/.exec(url);
  const port = parsePort(match?.[1]);
  const rest = match?.[2] ?? '';
  return { port, path: rest.startsWith('/') ? rest : `/${rest}` };
}

/** The request's headers as the app inside should see them: without the agent's token. */
function forwardHeaders(headers: IncomingHttpHeaders, tokenSource: TokenSource, upgrade: boolean) {
  const out: IncomingHttpHeaders = { ...headers };
  delete out[AGENT_TOKEN_HEADER];
  if (tokenSource === 'authorization') delete out.authorization;
  if (!upgrade) {
    const listed = String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase());
    for (const name of [...HOP_BY_HOP, ...listed]) delete out[name];
    delete out.upgrade;
  }
  return out;
}

export const badGateway = (port: number, err: Error) =>
  new HttpError(
    502,
    'upstream_unreachable',
    `nothing answered on port ${port} inside the machine (${(err as NodeJS.ErrnoException).code ?? err.message})`,
  );

/** Streams an HTTP request to 127.0.0.1:<port> and the response back, both ways unbuffered. */
export function proxyHttp(
  req: IncomingMessage,
  res: ServerResponse,
  tokenSource: TokenSource,
  activity: ActivityTracker,
): void {
  const { port, path } = parseProxyTarget(req.url ?? '');
  activity.proxyConnections++;
  activity.touch();
  let counted = true;
  const release = () => {
    if (!counted) return;
    counted = false;
    activity.proxyConnections--;
    activity.touch();
  };
  res.once('close', release);
  const upstream = request(
    {
      host: '127.0.0.1',
      port,
      method: req.method,
      path,
      headers: forwardHeaders(req.headers, tokenSource, false),
    },
    (upstreamRes) => {
      const headers = { ...upstreamRes.headers };
      for (const name of HOP_BY_HOP) delete headers[name];
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
      upstreamRes.pipe(res);
      upstreamRes.once('error', () => res.destroy());
    },
  );
  upstream.once('error', (err) => {
    if (!res.headersSent) sendError(res, badGateway(port, err));
    else res.destroy();
  });
  req.once('aborted', () => upstream.destroy());
  req.pipe(upstream);
}

/** Relays an upgrade (WebSocket or any other protocol) to 127.0.0.1:<port> as raw bytes:
 * the request head is rewritten for the inner path and everything after it is piped. */
export function proxyUpgrade(
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  tokenSource: TokenSource,
  activity: ActivityTracker,
): void {
  let target: { port: number; path: string };
  try {
    target = parseProxyTarget(req.url ?? '');
  } catch (err) {
    writeRawError(socket, err as HttpError);
    return;
  }
  relayToPort(socket, target.port, activity, (upstream) => {
    const headers = forwardHeaders(req.headers, tokenSource, true);
    let text = `${req.method} ${target.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined) text += `${name}: ${v}\r\n`;
      }
    }
    upstream.write(`${text}\r\n`);
    if (head.length > 0) upstream.write(head);
  });
}

/**
 * Connects `socket` to 127.0.0.1:<port> and copies bytes both ways once `onConnect` has
 * written what the connection starts with. While open it counts as a proxied connection for
 * the idle logic; a refused connection answers a 502 naming the port.
 */
export function relayToPort(
  socket: Socket,
  port: number,
  activity: ActivityTracker,
  onConnect: (upstream: Socket) => void,
): void {
  const upstream = connect({ host: '127.0.0.1', port, noDelay: true });
  activity.proxyConnections++;
  activity.touch();
  let open = true;
  let connected = false;
  const release = () => {
    if (!open) return;
    open = false;
    activity.proxyConnections--;
    activity.touch();
    upstream.destroy();
    // Before the upstream connected, the socket is closing itself after the 502.
    if (connected) socket.destroy();
  };
  upstream.once('connect', () => {
    connected = true;
    socket.setNoDelay(true);
    onConnect(upstream);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.once('error', (err) => {
    if (!connected) writeRawError(socket, badGateway(port, err));
    release();
  });
  upstream.once('close', release);
  socket.once('close', release);
  socket.once('error', release);
}

export function writeRawError(socket: Socket, err: HttpError): void {
  if (!socket.writable) return;
  const body = JSON.stringify({
    error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) },
  });
  socket.end(
    `HTTP/1.1 ${err.status} ${err.status === 502 ? 'Bad Gateway' : 'Error'}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
