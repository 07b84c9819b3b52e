// Keep-alive pools of connections to the app's port in a machine: the gateway's requests,
// already authorized and stripped, go over them as plain HTTP/1.1. Where the runtime can
// reach the machine's network (AgentEndpoint.connectPort) a connection goes straight there
// and no process relays its bytes; an app listening on 127.0.0.1 only refuses that, and then
// the connection is a raw TCP tunnel through the agent (`/v1/tunnel/:port`, docs/agent.md),
// which copies bytes. (The agent's /v1/proxy parsed and rewrote every request, doubling the
// CPU per request; the tunnel still costs a relay hop in the agent.)
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { AGENT_TOKEN_HEADER, AGENT_TUNNEL_PROTOCOL, agentTunnelPath } from '@snapvm/protocol';
import type { AgentEndpoint } from '../runtime/driver.js';

/**
 * Idle tunnels are closed after this long. The agent counts an open tunnel as an open proxied
 * connection (the machine is busy), so an unused URL must not hold one for long; it is also
 * shorter than the usual app keep-alive (Node's 5 s), so the app rarely closes a tunnel just
 * as a request is sent on it.
 */
export const TUNNEL_IDLE_MS = 2_000;

/** After a direct connection is refused and a tunnel is not, the pool tunnels this long. */
const DIRECT_RETRY_MS = 5_000;
/** A SYN dropped inside the machine (its own firewall) must not hang the request. */
const DIRECT_CONNECT_MS = 1_000;

/** The agent refused the tunnel: nothing listens on the port (502), or another answer. */
export class TunnelRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Opens one tunnel to `port` in the machine; the callback gets the socket after the 101. */
export function openTunnel(
  endpoint: AgentEndpoint,
  port: number,
  callback: (err: Error | null, socket?: Socket) => void,
): void {
  let done = false;
  const finish = (err: Error | null, socket?: Socket) => {
    if (done) return socket?.destroy();
    done = true;
    callback(err, socket);
  };
  const handshake = request({
    createConnection: () => endpoint.connect(),
    path: agentTunnelPath(port),
    headers: {
      connection: 'upgrade',
      upgrade: AGENT_TUNNEL_PROTOCOL,
      [AGENT_TOKEN_HEADER]: endpoint.token,
    },
  });
  handshake.on('upgrade', (_res, socket, head) => {
    if (head.length > 0) socket.unshift(head);
    finish(null, socket);
  });
  handshake.on('response', (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      let error: { code?: string; message?: string } = {};
      try {
        error = JSON.parse(Buffer.concat(chunks).toString()).error ?? {};
      } catch {}
      finish(
        new TunnelRefusedError(
          res.statusCode ?? 502,
          error.code ?? 'tunnel_refused',
          error.message ?? `the agent answered ${res.statusCode}`,
        ),
      );
    });
    res.on('error', (err) => finish(err));
  });
  handshake.on('error', (err) => finish(err));
  handshake.end();
}

/** Connects straight to `port` on the machine's address; the callback gets an error if not. */
export function connectDirect(
  connectPort: (port: number) => Socket,
  port: number,
  callback: (err: Error | null, socket?: Socket) => void,
): void {
  const socket = connectPort(port);
  const fail = (err: Error) => {
    socket.destroy();
    callback(err);
  };
  const timedOut = () => fail(new Error('connect timed out'));
  socket.setTimeout(DIRECT_CONNECT_MS, timedOut);
  socket.once('error', fail);
  socket.once('connect', () => {
    // The pool sets its own idle timeout later: this listener must not be there to hear it.
    socket.setTimeout(0);
    socket.off('timeout', timedOut);
    socket.off('error', fail);
    callback(null, socket);
  });
}

/** How often a waking machine's port is probed while nothing listens on it. */
const PROBE_MS = 4;

/**
 * Resolves once something accepts a connection on `port` at the machine's address, or after
 * `ms` at most: a request held for a waking machine goes out as soon as its app listens,
 * instead of on the next tick of a coarse retry timer. A refused probe costs a SYN and a RST
 * on the bridge; the agent is not involved. Without a direct route (connectPort), it just
 * waits `ms`.
 */
export function waitForListener(endpoint: AgentEndpoint, port: number, ms: number): Promise<void> {
  const { connectPort } = endpoint;
  const until = Date.now() + ms;
  return new Promise((resolve) => {
    if (!connectPort) {
      setTimeout(resolve, ms);
      return;
    }
    const probe = () => {
      const left = until - Date.now();
      if (left <= 0) return resolve();
      const socket = connectPort(port);
      let settled = false;
      const settle = (accepted: boolean) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        if (accepted) resolve();
        else setTimeout(probe, Math.min(PROBE_MS, Math.max(0, until - Date.now())));
      };
      // A SYN dropped inside the machine must not hold the request past `ms`.
      socket.setTimeout(left, () => settle(false));
      socket.once('error', () => settle(false));
      socket.once('connect', () => settle(true));
    };
    probe();
  });
}

/**
 * A keep-alive pool whose connections reach `port` in the machine: directly when the runtime
 * allows and the app listens on the machine's address, else through agent tunnels.
 */
export function createTunnelPool(endpoint: AgentEndpoint, port: number): Agent {
  const pool = new Agent({
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 32,
    timeout: TUNNEL_IDLE_MS,
  });
  let tunnelUntil = 0;
  const { connectPort } = endpoint;
  // Node's Agent waits for the callback when createConnection returns nothing.
  Object.assign(pool, {
    createConnection: (
      _options: unknown,
      callback: (err: Error | null, socket?: Socket) => void,
    ) => {
      if (!connectPort || Date.now() < tunnelUntil) return openTunnel(endpoint, port, callback);
      connectDirect(connectPort, port, (err, socket) => {
        if (!err) return callback(null, socket);
        openTunnel(endpoint, port, (tunnelErr, tunnel) => {
          // Only an app on loopback alone is worth tunnelling to for a while; when nothing
          // listens at all (a service still starting), the next try goes direct again.
          if (!tunnelErr) tunnelUntil = Date.now() + DIRECT_RETRY_MS;
          callback(tunnelErr, tunnel);
        });
      });
    },
  });
  return pool;
}
