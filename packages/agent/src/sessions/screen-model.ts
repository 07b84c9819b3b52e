import { Worker } from 'node:worker_threads';
import { log } from '../log.js';
import type { FromScreenWorker, ToScreenWorker } from './screen-protocol.js';

export interface ScreenSnapshot {
  /** Bytes that redraw the screen and recent scrollback on a fresh terminal. */
  data: Uint8Array;
  /** Stream offset the snapshot reflects: live output continues from here. */
  offset: number;
  cols: number;
  rows: number;
}

export interface ScreenHistory {
  /** Lines in the model's normal buffer (scrollback + screen). */
  total: number;
  /** Index of `lines[0]` in that buffer, 0 being the oldest line kept. */
  from: number;
  lines: string[];
}

interface WorkerSlot {
  worker: Worker;
  models: Map<number, ScreenModel>;
  alive: boolean;
}

// Compiled by tsc, the worker is its own module beside this one. Bundled, the agent is one
// script (agent.cjs) whose loader, agent.mjs, is also the worker's entry (agent-process.ts
// branches on isMainThread).
const workerUrl = import.meta.url.endsWith('/screen-model.js')
  ? new URL('./screen-worker.js', import.meta.url)
  : new URL('./agent.mjs', import.meta.url);

/** A small pool of worker threads holding every session's terminal model. */
export class ScreenModelPool {
  private readonly slots: WorkerSlot[] = [];
  private nextId = 1;

  constructor(private readonly size: number) {}

  private startSlot(): WorkerSlot {
    const slot: WorkerSlot = { worker: new Worker(workerUrl), models: new Map(), alive: true };
    slot.worker.unref();
    slot.worker.on('message', (message: FromScreenWorker) => {
      slot.models.get(message.id)?.receive(message);
    });
    slot.worker.on('error', (err) => log('error', 'screen worker failed', { err: err.message }));
    slot.worker.on('exit', () => {
      slot.alive = false;
      for (const model of slot.models.values()) model.fail();
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
    });
    this.slots.push(slot);
    return slot;
  }

  /** Opens a model on the worker holding the fewest models. */
  open(cols: number, rows: number, scrollback: number): ScreenModel {
    const slot =
      this.slots.length < this.size
        ? this.startSlot()
        : this.slots.reduce((a, b) => (b.models.size < a.models.size ? b : a));
    const model = new ScreenModel(this.nextId++, slot, cols, rows, scrollback);
    slot.models.set(model.id, model);
    return model;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}

/** Main-thread handle of one session's model. Output is batched per event-loop turn and
 * transferred to the worker; `lag` is what the worker has not parsed yet. */
export class ScreenModel {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private scheduled = false;
  private fed = 0;
  private acked = 0;
  private nextReq = 1;
  private readonly snapshots = new Map<
    number,
    { resolve: (s: ScreenSnapshot) => void; reject: (e: Error) => void }
  >();
  private readonly histories = new Map<
    number,
    { resolve: (h: ScreenHistory) => void; reject: (e: Error) => void }
  >();
  private failed = false;
  /** Called whenever the worker catches up by some bytes. */
  onProgress: (() => void) | null = null;

  constructor(
    readonly id: number,
    private readonly slot: WorkerSlot,
    cols: number,
    rows: number,
    scrollback: number,
  ) {
    this.send({ t: 'open', id, cols, rows, scrollback });
  }

  get lag(): number {
    if (this.failed) return 0;
    return this.fed + this.batchBytes - this.acked;
  }

  private send(message: ToScreenWorker, transfer: ArrayBuffer[] = []): void {
    if (this.slot.alive && !this.failed) this.slot.worker.postMessage(message, transfer);
  }

  feed(chunk: Uint8Array): void {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.batchBytes === 0) return;
    const bytes = new Uint8Array(this.batchBytes);
    let at = 0;
    for (const chunk of this.batch) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    this.fed += this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.send({ t: 'data', id: this.id, bytes }, [bytes.buffer]);
  }

  resize(cols: number, rows: number): void {
    this.flush();
    this.send({ t: 'resize', id: this.id, cols, rows });
  }

  /** Serializes the screen plus `scrollback` lines once the model has parsed at least up
   * to `minOffset`; the result's offset says where live output must continue. */
  snapshot(minOffset: number, scrollback: number): Promise<ScreenSnapshot> {
    this.flush();
    if (this.failed) return Promise.reject(new Error('the screen model is gone'));
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.snapshots.set(req, { resolve, reject });
      this.send({ t: 'snapshot', id: this.id, req, minOffset, scrollback });
    });
  }

  /** Plain-text lines of the scrollback as the model has it now (not offset-consistent). */
  history(before: number | null, lines: number): Promise<ScreenHistory> {
    this.flush();
    if (this.failed) return Promise.reject(new Error('the screen model is gone'));
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.histories.set(req, { resolve, reject });
      this.send({ t: 'history', id: this.id, req, before, lines });
    });
  }

  receive(message: FromScreenWorker): void {
    if (message.t === 'ack') {
      this.acked += message.bytes;
      this.onProgress?.();
      return;
    }
    if (message.t === 'history') {
      const pending = this.histories.get(message.req);
      this.histories.delete(message.req);
      pending?.resolve({ total: message.total, from: message.from, lines: message.lines });
      return;
    }
    const pending = this.snapshots.get(message.req);
    this.snapshots.delete(message.req);
    pending?.resolve({
      data: message.data,
      offset: message.offset,
      cols: message.cols,
      rows: message.rows,
    });
  }

  fail(): void {
    this.failed = true;
    for (const pending of [...this.snapshots.values(), ...this.histories.values()]) {
      pending.reject(new Error('the screen model worker exited'));
    }
    this.snapshots.clear();
    this.histories.clear();
    this.onProgress?.();
  }

  close(): void {
    this.send({ t: 'close', id: this.id });
    this.slot.models.delete(this.id);
    this.fail();
  }
}
