import {
  AGENT_CLOSE_CODES,
  EXEC_STREAM,
  type ExecStreamServerMessage,
  execStreamClientMessageSchema,
  execStreamStartSchema,
} from '@snapvm/protocol';
import type { WebSocket } from 'ws';
import type { ActivityTracker } from '../activity.js';
import { HttpError, invalidInput } from '../http/errors.js';
import { type StartedExec, startExec } from './exec-runner.js';

const CLIENT_QUEUE_BYTES = 8 * 1024 * 1024;

/** Streaming exec: the first text frame starts the command; binary frames are stdin; output
 * comes back as binary frames whose first byte names the stream (1 stdout, 2 stderr). */
export function handleExecSocket(ws: WebSocket, activity: ActivityTracker): void {
  let exec: StartedExec | null = null;
  const send = (message: ExecStreamServerMessage) => ws.send(JSON.stringify(message));
  const fail = (code: string, message: string) => {
    send({ type: 'error', code, message });
    ws.close(AGENT_CLOSE_CODES.badMessage, code);
  };
  let paused = false;
  const forward = (stream: number) => (chunk: Buffer) => {
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = stream;
    chunk.copy(frame, 1);
    ws.send(frame, { binary: true });
    // Output is not dropped here; instead the process waits until the client catches up.
    if (ws.bufferedAmount > CLIENT_QUEUE_BYTES && exec && !paused) {
      paused = true;
      exec.child.stdout?.pause();
      exec.child.stderr?.pause();
      const resume = setInterval(() => {
        if (ws.bufferedAmount <= CLIENT_QUEUE_BYTES / 2 || ws.readyState !== ws.OPEN) {
          clearInterval(resume);
          paused = false;
          exec?.child.stdout?.resume();
          exec?.child.stderr?.resume();
        }
      }, 10);
    }
  };

  ws.on('message', (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) {
      if (!exec) return fail('not_started', 'send the start message first');
      exec.child.stdin?.write(bytes);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      return fail('bad_message', 'text frames must be JSON');
    }
    if (!exec) {
      const start = execStreamStartSchema.safeParse(parsed);
      if (!start.success) {
        const err = invalidInput(start.error);
        return fail('invalid_input', err.message);
      }
      try {
        exec = startExec(start.data, activity);
      } catch (err) {
        if (err instanceof HttpError) return fail(err.code, err.message);
        throw err;
      }
      const running = exec;
      send({ type: 'started', pid: running.child.pid ?? 0 });
      running.child.stdout?.on('data', forward(EXEC_STREAM.stdout));
      running.child.stderr?.on('data', forward(EXEC_STREAM.stderr));
      void running.done.then(({ exitCode, signal, timedOut }) => {
        send({ type: 'exit', code: exitCode, signal, timedOut });
        ws.close(AGENT_CLOSE_CODES.exited, 'exited');
      });
      return;
    }
    const message = execStreamClientMessageSchema.safeParse(parsed);
    if (!message.success) return fail('bad_message', 'expected {"type":"eof"} or a signal');
    if (message.data.type === 'eof') exec.child.stdin?.end();
    else exec.kill(message.data.signal);
  });
  // A client that goes away takes its process with it.
  ws.on('close', () => exec?.kill('SIGKILL'));
  ws.on('error', () => ws.terminate());
}
