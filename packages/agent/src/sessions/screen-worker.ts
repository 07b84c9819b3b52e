// Worker thread that owns the headless terminal models of the sessions assigned to it.
// Parsing costs 2-3x the PTY's output rate (reference/terminal-model.md), so it lives here,
// off the thread that forwards output to clients.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import headless from '@xterm/headless';
import type { FromScreenWorker, ToScreenWorker } from './screen-protocol.js';
import { ScreenSerializer } from './screen-serializer.js';

const { Terminal } = headless;

// xterm throws once more than 50 MB are pending in its own write buffer, so each model gets
// at most this much at a time and the rest waits in our queue.
const MAX_IN_TERMINAL = 4 * 1024 * 1024;
// Full reset first, so a client that kept its old screen still ends up identical.
const RESET = new Uint8Array([0x1b, 0x63]);
// How long an unchanged screen's snapshot is kept for further reattaches.
const SNAPSHOT_CACHE_MS = 10_000;

type Queued = Uint8Array | { cols: number; rows: number };
interface PendingSnapshot {
  req: number;
  minOffset: number;
  scrollback: number;
}

interface CachedSnapshot {
  offset: number;
  scrollback: number;
  cols: number;
  rows: number;
  data: Uint8Array<ArrayBuffer>;
}

interface Model {
  term: InstanceType<typeof Terminal>;
  serializer: ScreenSerializer;
  queue: Queued[];
  inTerminal: number;
  applied: number;
  waiting: PendingSnapshot[];
  closed: boolean;
  cache: CachedSnapshot | null;
  cacheTimer: NodeJS.Timeout | null;
}

// The model may lag; keystroke echo and output forwarding on the main thread must not. On
// Linux each thread has its own nice value, so this thread alone yields the CPU to them.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  setPriority(tid, 10);
} catch {
  // not Linux, or not permitted: run at normal priority
}

const port = parentPort;
if (!port) throw new Error('screen-worker must run in a worker thread');
const models = new Map<number, Model>();
const post = (message: FromScreenWorker, transfer: ArrayBuffer[] = []) =>
  port.postMessage(message, transfer);

function pump(id: number, model: Model): void {
  while (model.queue.length > 0 && !model.closed) {
    const item = model.queue[0] as Queued;
    if (!(item instanceof Uint8Array)) {
      // A resize applies between the bytes written before and after it.
      if (model.inTerminal > 0) return;
      model.term.resize(item.cols, item.rows);
      model.queue.shift();
      continue;
    }
    if (model.inTerminal >= MAX_IN_TERMINAL) return;
    model.queue.shift();
    model.inTerminal += item.length;
    model.term.write(item, () => {
      model.inTerminal -= item.length;
      model.applied += item.length;
      post({ t: 'ack', id, bytes: item.length });
      serveSnapshots(id, model);
      pump(id, model);
    });
  }
}

/** Serialized screen + `scrollback` lines. When nothing changed since the last one (a
 * burst of reconnects after a network blip or a server restart) the cached bytes are reused
 * instead of serializing again; a copy is sent because the transfer gives the buffer away.
 * Otherwise the serializer still reuses the scrollback rows it serialized before. */
function snapshotBytes(model: Model, scrollback: number): Uint8Array<ArrayBuffer> {
  const { term } = model;
  const cached = model.cache;
  if (
    cached &&
    cached.offset === model.applied &&
    cached.scrollback === scrollback &&
    cached.cols === term.cols &&
    cached.rows === term.rows
  ) {
    return cached.data.slice();
  }
  const body = model.serializer.serialize(scrollback);
  const data = new Uint8Array(RESET.length + body.length);
  data.set(RESET, 0);
  data.set(body, RESET.length);
  model.cache = { offset: model.applied, scrollback, cols: term.cols, rows: term.rows, data };
  if (model.cacheTimer) clearTimeout(model.cacheTimer);
  model.cacheTimer = setTimeout(() => {
    model.cache = null;
  }, SNAPSHOT_CACHE_MS);
  return data.slice();
}

// The model's state always corresponds to a whole number of applied chunks here (xterm calls
// a write's callback right after parsing it), so `applied` is the snapshot's exact offset.
function serveSnapshots(id: number, model: Model): void {
  if (model.waiting.length === 0) return;
  const ready = model.waiting.filter((w) => model.applied >= w.minOffset);
  if (ready.length === 0) return;
  model.waiting = model.waiting.filter((w) => model.applied < w.minOffset);
  for (const w of ready) {
    const data = snapshotBytes(model, w.scrollback);
    post(
      {
        t: 'snapshot',
        id,
        req: w.req,
        data,
        offset: model.applied,
        cols: model.term.cols,
        rows: model.term.rows,
      },
      [data.buffer],
    );
  }
}

port.on('message', (message: ToScreenWorker) => {
  if (message.t === 'open') {
    const term = new Terminal({
      cols: message.cols,
      rows: message.rows,
      scrollback: message.scrollback,
      allowProposedApi: true,
      logLevel: 'off',
    });
    models.set(message.id, {
      term,
      serializer: new ScreenSerializer(term),
      queue: [],
      inTerminal: 0,
      applied: 0,
      waiting: [],
      closed: false,
      cache: null,
      cacheTimer: null,
    });
    return;
  }
  const model = models.get(message.id);
  if (!model) return;
  switch (message.t) {
    case 'data':
      // New output makes the cached snapshot stale; free it now rather than at its timeout.
      model.cache = null;
      model.queue.push(message.bytes);
      pump(message.id, model);
      break;
    case 'resize':
      model.queue.push({ cols: message.cols, rows: message.rows });
      pump(message.id, model);
      break;
    case 'snapshot':
      model.waiting.push(message);
      serveSnapshots(message.id, model);
      break;
    case 'history': {
      // Plain text of the normal buffer (scrollback + screen), oldest first; `before` is an
      // absolute line index in it (default: the end).
      const buffer = model.term.buffer.normal;
      const end = Math.min(message.before ?? buffer.length, buffer.length);
      const from = Math.max(0, end - message.lines);
      const lines: string[] = [];
      for (let y = from; y < end; y++) lines.push(buffer.getLine(y)?.translateToString(true) ?? '');
      post({ t: 'history', id: message.id, req: message.req, total: buffer.length, from, lines });
      break;
    }
    case 'close':
      if (model.cacheTimer) clearTimeout(model.cacheTimer);
      model.closed = true;
      model.serializer.dispose();
      model.term.dispose();
      models.delete(message.id);
      break;
  }
});
