// Keep-alive pools of raw TCP tunnels through a machine's agent (`/v1/tunnel/:port`, docs/
// agent.md). Each pooled connection is a tunnel to the app's port: the gateway's requests,
// already authorized and stripped, go over it as plain HTTP/1.1, and the agent only copies
// bytes. The agent's /v1/proxy parsed and rewrote every request, doubling the CPU per request.
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

/** A keep-alive pool whose connections are tunnels to `port` in the machine. */
export function createTunnelPool(endpoint: AgentEndpoint, port: number): Agent {
  const pool = new Agent({
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 32,
    timeout: TUNNEL_IDLE_MS,
  });
  // Node's Agent waits for the callback when createConnection returns nothing.
  Object.assign(pool, {
    createConnection: (_options: unknown, callback: (err: Error | null, socket?: Socket) => void) =>
      openTunnel(endpoint, port, callback),
  });
  return pool;
}
