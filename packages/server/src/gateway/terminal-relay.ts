// Relays one browser terminal WebSocket to the agent's attach socket. Frames pass through
// unchanged (the agent's snapshot and offset-resume framing is the public protocol), so a
// client that reconnects with `?offset=N` gets no duplicate output through the gateway either.
import WebSocket from 'ws';

/** Frames buffered toward a slow side before the other side is paused. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

export interface RelayOptions {
  /** Ping period; a side that has not answered the previous ping is dropped. */
  heartbeatMs: number;
  onClose?: () => void;
}

/** Close codes a peer may not send (1005, 1006, 1015) become "going away"/"internal error". */
function sendableCode(code: number): number {
  if (code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014))
    return code;
  if (code >= 3000 && code <= 4999) return code;
  return code === 1006 ? 1011 : 1001;
}

/** Pings `socket` every `ms`; terminates it when a ping goes unanswered. */
export function keepAlive(socket: WebSocket, ms: number): () => void {
  let answered = true;
  socket.on('pong', () => {
    answered = true;
  });
  const timer = setInterval(() => {
    if (!answered) {
      socket.terminate();
      return;
    }
    answered = false;
    socket.ping();
  }, ms);
  timer.unref();
  const stop = () => clearInterval(timer);
  socket.once('close', stop);
  return stop;
}

export function relayTerminal(client: WebSocket, agent: WebSocket, options: RelayOptions): void {
  let closed = false;
  const finish = (from: 'client' | 'agent', code: number, reason: Buffer) => {
    if (closed) return;
    closed = true;
    const other = from === 'client' ? agent : client;
    const text = reason.toString('utf8').slice(0, 120);
    if (other.readyState === WebSocket.OPEN) other.close(sendableCode(code), text);
    else if (other.readyState === WebSocket.CONNECTING) other.terminate();
    options.onClose?.();
  };

  const forward = (from: WebSocket, to: WebSocket) => {
    from.on('message', (data: Buffer, isBinary: boolean) => {
      if (to.readyState !== WebSocket.OPEN) return;
      to.send(data, { binary: isBinary });
      // Flow control: the agent drops a client that falls 8 MiB behind; this side must not
      // hide that by buffering without bound.
      if (to.bufferedAmount > HIGH_WATER_BYTES) {
        from.pause();
        const drain = setInterval(() => {
          if (to.readyState !== WebSocket.OPEN || to.bufferedAmount <= HIGH_WATER_BYTES / 2) {
            clearInterval(drain);
            from.resume();
          }
        }, 20);
      }
    });
  };
  forward(agent, client);
  forward(client, agent);
  client.on('close', (code, reason) => finish('client', code, reason));
  agent.on('close', (code, reason) => finish('agent', code, reason));
  client.on('error', () => client.terminate());
  agent.on('error', () => agent.terminate());
  keepAlive(client, options.heartbeatMs);
  keepAlive(agent, options.heartbeatMs);
}
