import { AGENT_CLOSE_CODES, type AttachQuery, attachClientMessageSchema } from '@snapvm/protocol';
import type { WebSocket } from 'ws';
import { log } from '../log.js';
import type { TerminalSession } from './terminal-session.js';

/** One terminal client: binary frames are keystrokes, text frames JSON control messages. */
export function handleAttachSocket(
  ws: WebSocket,
  session: TerminalSession,
  request: AttachQuery,
): void {
  ws.on('message', (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      session.input(bytes);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const message = attachClientMessageSchema.safeParse(parsed);
    if (!message.success) {
      const reason = 'malformed control message: expected {"type":"resize","cols":N,"rows":N}';
      ws.send(JSON.stringify({ type: 'error', code: 'bad_message', message: reason }));
      ws.close(AGENT_CLOSE_CODES.badMessage, 'malformed control message');
      return;
    }
    session.resizeClient(ws, message.data.cols, message.data.rows);
  });
  ws.on('error', (err) => log('warn', 'terminal socket error', { err: err.message }));
  session.attach(ws, request).catch((err: Error) => {
    log('error', 'attach failed', { session: session.id, err: err.message });
    ws.close(1011, 'attach failed');
  });
}
