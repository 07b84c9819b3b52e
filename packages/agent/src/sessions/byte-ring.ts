/** The last `capacity` bytes of a stream, addressed by absolute stream offset. */
export class ByteRing {
  private readonly buf: Buffer;
  /** Absolute offset one past the last byte written. */
  private end = 0;

  constructor(readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get endOffset(): number {
    return this.end;
  }

  /** Oldest offset still held. */
  get startOffset(): number {
    return Math.max(0, this.end - this.capacity);
  }

  write(chunk: Uint8Array): void {
    let data = chunk;
    if (data.length >= this.capacity) {
      this.end += data.length - this.capacity;
      data = data.subarray(data.length - this.capacity);
    }
    const pos = this.end % this.capacity;
    const first = Math.min(data.length, this.capacity - pos);
    this.buf.set(data.subarray(0, first), pos);
    if (first < data.length) this.buf.set(data.subarray(first), 0);
    this.end += data.length;
  }

  /** Copies bytes from `offset` to the end; null when `offset` is no longer (or not yet) held. */
  readFrom(offset: number): Buffer | null {
    if (offset < this.startOffset || offset > this.end) return null;
    const length = this.end - offset;
    const out = Buffer.allocUnsafe(length);
    const pos = offset % this.capacity;
    const first = Math.min(length, this.capacity - pos);
    this.buf.copy(out, 0, pos, pos + first);
    if (first < length) this.buf.copy(out, first, 0, length - first);
    return out;
  }

  /** Moves `offset` back onto the first byte of a UTF-8 sequence, so a replay that starts
   * there does not begin with orphaned continuation bytes. */
  alignToCharStart(offset: number): number {
    let at = offset;
    while (at > this.startOffset && at > offset - 3 && at < this.end) {
      const byte = this.buf[at % this.capacity] as number;
      if ((byte & 0xc0) !== 0x80) break;
      at--;
    }
    return at;
  }
}
