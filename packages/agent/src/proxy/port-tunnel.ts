import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AGENT_TUNNEL_PROTOCOL } from '@snapvm/protocol';
import type { ActivityTracker } from '../activity.js';
import { HttpError } from '../http/errors.js';
import { parsePort, relayToPort, writeRawError } from './port-proxy.js';

/**
 * `GET /v1/tunnel/<port>` with `Upgrade: snapvm-tcp`: once 127.0.0.1:<port> accepts, the
 * agent answers 101 and from then on only copies bytes both ways. The gateway sends many
 * HTTP requests over one tunnel (it has already authorized and stripped them), so the agent
 * parses nothing per request; /v1/proxy, which parses and rewrites each request, costs about
 * as much CPU as the app it fronts.
 */
export function openTunnel(
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  activity: ActivityTracker,
): void {
  let port: number;
  try {
    port = parsePort(/^\/v1\/tunnel\/([^/?]*)(?:\?.*)?$/.exec(req.url ?? '')?.[1]);
    if (String(req.headers.upgrade).toLowerCase() !== AGENT_TUNNEL_PROTOCOL)
      throw new HttpError(
        400,
        'invalid_upgrade',
        `upgrade: a tunnel is opened with "Upgrade: ${AGENT_TUNNEL_PROTOCOL}"`,
        'upgrade',
      );
  } catch (err) {
    writeRawError(socket, err as HttpError);
    return;
  }
  // An open tunnel is an open proxied connection: the gateway closes idle ones within seconds,
  // so a machine whose URL nobody uses does not stay busy.
  relayToPort(socket, port, activity, (upstream) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${AGENT_TUNNEL_PROTOCOL}\r\n\r\n`,
    );
    if (head.length > 0) upstream.write(head);
  });
}
