import { closeSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';

type Listener = (chunk: Buffer) => void;

/** A service's stdout and stderr in `<name>.log`, rotated to `<name>.log.1` when it passes
 * `maxBytes`, so a chatty service cannot fill the machine's disk. */
export class ServiceLog {
  private fd: number | null = null;
  private size = 0;
  private readonly listeners = new Set<Listener>();

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {}

  private open(): number {
    if (this.fd === null) {
      this.fd = openSync(this.path, 'a', 0o600);
      this.size = statSync(this.path).size;
    }
    return this.fd;
  }

  write(chunk: Buffer): void {
    if (this.size + chunk.length > this.maxBytes && this.size > 0) this.rotate();
    writeSync(this.open(), chunk);
    this.size += chunk.length;
    for (const listener of this.listeners) listener(chunk);
  }

  private rotate(): void {
    this.close();
    renameSync(this.path, `${this.path}.1`);
    this.size = 0;
  }

  /** The last `lines` lines across the rotated and the current file. */
  tail(lines: number): Buffer {
    if (lines === 0) return Buffer.alloc(0);
    const parts = [readTail(`${this.path}.1`, this.maxBytes), readTail(this.path, this.maxBytes)];
    const all = Buffer.concat(parts);
    let end = all.length;
    if (end > 0 && all[end - 1] === 0x0a) end--;
    let start = end;
    let seen = 0;
    while (start > 0) {
      if (all[start - 1] === 0x0a && ++seen === lines) break;
      start--;
    }
    return all.subarray(start);
  }

  follow(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function readTail(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = statSync(path).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf;
  } finally {
    closeSync(fd);
  }
}
