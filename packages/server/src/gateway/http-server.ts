// The server's one listening socket: machine hosts go to the app gateway before Fastify sees
// them (no routing, hooks or body parsing on the proxy path), everything else to Fastify.
// A new connection meets the relay first (app-relay.ts), which keeps it while its requests
// take the machine-URL fast path and hands it to Node's HTTP server otherwise.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AppGateway } from './app-gateway.js';
import type { AppRelay } from './app-relay.js';
import type { TlsMaterial } from './tls.js';

export interface HttpServerOptions {
  tls: TlsMaterial | null;
  /** Inactivity limit on a connection (Fastify's connectionTimeout). */
  connectionTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Set once the gateway exists; requests before that all go to Fastify. */
  gateway: () => AppGateway | null;
  /** Takes each new connection first; made for this server (native only without TLS). */
  relay: AppRelay;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function serverFactory(options: HttpServerOptions) {
  return (fastifyHandler: Handler): Server => {
    const listener: Handler = (req, res) => {
      const gateway = options.gateway();
      const host = gateway?.match(req);
      if (!gateway || !host) return fastifyHandler(req, res);
      // Proxied responses may legitimately stay quiet for long (long polls, event streams).
      req.socket.setTimeout(0);
      void gateway.handleRequest(req, res, host);
    };
    const server: Server = options.tls
      ? (createHttpsServer(
          { cert: options.tls.cert, key: options.tls.key },
          listener,
        ) as unknown as Server)
      : createServer(listener);
    // Bodies through machine URLs may take longer than any API request: the API's own limits
    // (body size, connection inactivity) bound the main origin instead.
    server.requestTimeout = 0;
    server.keepAliveTimeout = options.keepAliveTimeoutMs;
    server.setTimeout(options.connectionTimeoutMs);
    // @fastify/websocket listens for 'upgrade' on this server and would answer machine hosts
    // with the API's 404; machine-host upgrades are taken before any listener sees them.
    const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean;
    const { relay } = options;
    // Node's HTTP server takes a connection on this event ('secureConnection' after TLS).
    const connectionEvent = options.tls ? 'secureConnection' : 'connection';
    const closeIdle = server.closeIdleConnections.bind(server);
    const closeAll = server.closeAllConnections.bind(server);
    server.closeIdleConnections = () => {
      closeIdle();
      relay.closeIdle();
    };
    server.closeAllConnections = () => {
      closeAll();
      relay.closeAll();
    };
    server.emit = ((event: string, ...args: unknown[]) => {
      if (event === connectionEvent) {
        relay.accept(args[0] as Socket, (socket) => emit(event, socket));
        return true;
      }
      if (event === 'upgrade') {
        const [req, socket, head] = args as [IncomingMessage, Duplex, Buffer];
        const gateway = options.gateway();
        const host = gateway?.match(req);
        if (gateway && host) {
          void gateway.handleUpgrade(req, socket, head, host);
          return true;
        }
      }
      return emit(event, ...args);
    }) as Server['emit'];
    return server;
  };
}
