// The escape sequences that redraw a headless terminal: byte for byte what
// @xterm/addon-serialize 0.14.0 gives for `serialize({ scrollback })` (its string handler is
// ported here: Copyright (c) 2019 The xterm.js authors, MIT license), plus a cache of
// scrollback rows. The addon itself stays a dev dependency: the test compares against it.
//
// Rows that have scrolled off the screen no longer change, yet the addon serializes every
// one of them on every call: ~40 ms of CPU for 1,000 colourful lines, per reattach. Here they
// are kept, serialized and UTF-8 encoded, in chunks of CHUNK_ROWS rows, so a call serializes
// only the screen and the rows not cached yet. A row's text depends on the style state the
// rows before it left behind (the last SGR written, the background used for erases), so a
// chunk is reused only when it is entered in the same state, and replaying it leaves the state
// as serializing it would have.
import type { IBuffer, IBufferCell, IBufferLine, Terminal } from '@xterm/headless';

const CHUNK_ROWS = 16;

type Style = Pick<
  IBufferCell,
  | 'getFgColorMode'
  | 'getFgColor'
  | 'getBgColorMode'
  | 'getBgColor'
  | 'isFgRGB'
  | 'isFgPalette'
  | 'isBgRGB'
  | 'isBgPalette'
  | 'isInverse'
  | 'isBold'
  | 'isUnderline'
  | 'isOverline'
  | 'isBlink'
  | 'isInvisible'
  | 'isItalic'
  | 'isDim'
  | 'isStrikethrough'
  | 'isAttributeDefault'
>;

interface Anchor {
  readonly line: number;
  readonly isDisposed: boolean;
  dispose(): void;
}

// Not in the public API, used as the addon uses them: the attributes new output would be
// written with (restored at the end of the snapshot) and the normal buffer itself, whose
// identity changes on a full reset (RIS) and whose markers follow lines as old ones are
// trimmed (a public marker can only be placed while the normal buffer is active).
interface TerminalInternals {
  _core: {
    _inputHandler: { _curAttrData: Style };
    buffers: { normal: { addMarker(y: number): Anchor } };
  };
}

const equalFg = (a: Style, b: Style) =>
  a.getFgColorMode() === b.getFgColorMode() && a.getFgColor() === b.getFgColor();
const equalBg = (a: Style, b: Style) =>
  a.getBgColorMode() === b.getBgColorMode() && a.getBgColor() === b.getBgColor();
const equalFlags = (a: Style, b: Style) =>
  a.isInverse() === b.isInverse() &&
  a.isBold() === b.isBold() &&
  a.isUnderline() === b.isUnderline() &&
  a.isOverline() === b.isOverline() &&
  a.isBlink() === b.isBlink() &&
  a.isInvisible() === b.isInvisible() &&
  a.isItalic() === b.isItalic() &&
  a.isDim() === b.isDim() &&
  a.isStrikethrough() === b.isStrikethrough();

const NO_CHANGE: number[] = [];

/** The SGR parameters that select a colour: `ext` is 38 (foreground) or 48 (background),
 * `normal` and `bright` where the 16 basic colours start (30/90 or 40/100). */
function pushColor(
  sgr: number[],
  color: number,
  rgb: boolean,
  palette: boolean,
  ext: number,
  normal: number,
  bright: number,
): void {
  if (rgb) sgr.push(ext, 2, (color >>> 16) & 0xff, (color >>> 8) & 0xff, color & 0xff);
  else if (!palette) sgr.push(ext + 1);
  else if (color >= 16) sgr.push(ext, 5, color);
  else sgr.push(color & 8 ? bright + (color & 7) : normal + (color & 7));
}

function diffStyle(cell: Style, old: Style): number[] {
  const fgChanged = !equalFg(cell, old);
  const bgChanged = !equalBg(cell, old);
  const flagsChanged = !equalFlags(cell, old);
  if (!fgChanged && !bgChanged && !flagsChanged) return NO_CHANGE;
  const sgr: number[] = [];
  if (cell.isAttributeDefault()) {
    if (!old.isAttributeDefault()) sgr.push(0);
    return sgr;
  }
  if (fgChanged) pushColor(sgr, cell.getFgColor(), cell.isFgRGB(), cell.isFgPalette(), 38, 30, 90);
  if (bgChanged) {
    pushColor(sgr, cell.getBgColor(), cell.isBgRGB(), cell.isBgPalette(), 48, 40, 100);
  }
  if (flagsChanged) {
    if (cell.isInverse() !== old.isInverse()) sgr.push(cell.isInverse() ? 7 : 27);
    if (cell.isBold() !== old.isBold()) sgr.push(cell.isBold() ? 1 : 22);
    if (cell.isUnderline() !== old.isUnderline()) sgr.push(cell.isUnderline() ? 4 : 24);
    if (cell.isOverline() !== old.isOverline()) sgr.push(cell.isOverline() ? 53 : 55);
    if (cell.isBlink() !== old.isBlink()) sgr.push(cell.isBlink() ? 5 : 25);
    if (cell.isInvisible() !== old.isInvisible()) sgr.push(cell.isInvisible() ? 8 : 28);
    if (cell.isItalic() !== old.isItalic()) sgr.push(cell.isItalic() ? 3 : 23);
    if (cell.isDim() !== old.isDim()) sgr.push(cell.isDim() ? 2 : 22);
    if (cell.isStrikethrough() !== old.isStrikethrough()) sgr.push(cell.isStrikethrough() ? 9 : 29);
  }
  return sgr;
}

/** Everything about a style that the serializer looks at, as a cache key. */
function styleKey(s: Style): string {
  const flags =
    (s.isInverse() ? 1 : 0) |
    (s.isBold() ? 2 : 0) |
    (s.isUnderline() ? 4 : 0) |
    (s.isOverline() ? 8 : 0) |
    (s.isBlink() ? 16 : 0) |
    (s.isInvisible() ? 32 : 0) |
    (s.isItalic() ? 64 : 0) |
    (s.isDim() ? 128 : 0) |
    (s.isStrikethrough() ? 256 : 0) |
    (s.isAttributeDefault() ? 512 : 0);
  return `${s.getFgColorMode()},${s.getFgColor()},${bgKey(s)},${flags}`;
}
const bgKey = (s: Style) => `${s.getBgColorMode()},${s.getBgColor()}`;

// The state a chunk leaves behind is its last style change, if it has one. The cursor
// positions the addon tracks need not be replayed: the row right above the screen, never
// cached, always sets the one the cursor is moved from at the end, and the other is only
// read for a buffer without scrollback, which has no chunks.
interface Chunk {
  /** The state it was entered with; its bytes are valid for that state only. */
  key: string;
  bytes: Uint8Array;
  /** The cell of its last style change, relative to its first row. */
  style: { row: number; col: number } | null;
}

const encoder = new TextEncoder();

/** One buffer's rows to text, carrying the addon's state from row to row. */
class BufferWriter {
  private readonly cell: IBufferCell;
  private readonly cursorStyle: IBufferCell;
  private cursorStyleRow = 0;
  private cursorStyleCol = 0;
  private readonly backgroundCell: IBufferCell;
  private readonly lastChar: IBufferCell;
  private readonly lastSecondChar: IBufferCell;
  private readonly nextFirstChar: IBufferCell;
  private readonly firstRow: number;
  private lastCursorRow: number;
  private lastCursorCol = 0;
  private lastContentCursorRow: number;
  private lastContentCursorCol = 0;
  private styleChanges = 0;
  private currentRow = '';
  private nullCellCount = 0;
  // Rows serialized afresh since the last cached chunk, and the bytes before them.
  private rowTexts: string[] = [];
  private rowSeps: string[] = [];
  private readonly parts: Uint8Array[] = [];

  constructor(
    private readonly term: Terminal,
    private readonly buffer: IBuffer,
    start: number,
    private readonly end: number,
  ) {
    this.cell = buffer.getNullCell();
    this.cursorStyle = buffer.getNullCell();
    this.backgroundCell = buffer.getNullCell();
    this.lastChar = buffer.getNullCell();
    this.lastSecondChar = buffer.getNullCell();
    this.nextFirstChar = buffer.getNullCell();
    this.firstRow = start;
    this.lastCursorRow = start;
    this.lastContentCursorRow = start;
  }

  /** Whether `row` ends by adopting the last style's background for erases (the addon's
   * "BCE"), which it does from the screen's height below the first row on. */
  bce(row: number): boolean {
    return row - this.firstRow >= this.term.rows;
  }

  writeRow(row: number): void {
    const isLastRow = row === this.end;
    const line = this.buffer.getLine(row);
    if (line) {
      const endCol = isLastRow ? this.term.cols : line.length;
      for (let col = 0; col < endCol; col++) {
        const cell = line.getCell(col, this.cell);
        if (cell) this.nextCell(cell, line, row, col);
      }
    }
    this.rowSeps.push(this.rowEnd(row, isLastRow));
    this.rowTexts.push(this.currentRow);
    this.currentRow = '';
    this.nullCellCount = 0;
  }

  private nextCell(cell: IBufferCell, line: IBufferLine, row: number, col: number): void {
    // The second half of a wide character.
    if (cell.getWidth() === 0) return;
    const isEmptyCell = cell.getChars() === '';
    const sgr = diffStyle(cell, this.cursorStyle);
    // An empty cell only shows its background.
    const styleChanged = isEmptyCell ? !equalBg(this.cursorStyle, cell) : sgr.length > 0;
    if (styleChanged) {
      if (this.nullCellCount > 0) {
        if (!equalBg(this.cursorStyle, this.backgroundCell)) {
          this.currentRow += `\x1b[${this.nullCellCount}X`;
        }
        this.currentRow += `\x1b[${this.nullCellCount}C`;
        this.nullCellCount = 0;
      }
      this.lastContentCursorRow = this.lastCursorRow = row;
      this.lastContentCursorCol = this.lastCursorCol = col;
      this.currentRow += `\x1b[${sgr.join(';')}m`;
      line.getCell(col, this.cursorStyle);
      this.cursorStyleRow = row;
      this.cursorStyleCol = col;
      this.styleChanges++;
    }
    if (isEmptyCell) {
      this.nullCellCount += cell.getWidth();
      return;
    }
    if (this.nullCellCount > 0) {
      if (equalBg(this.cursorStyle, this.backgroundCell)) {
        this.currentRow += `\x1b[${this.nullCellCount}C`;
      } else {
        this.currentRow += `\x1b[${this.nullCellCount}X\x1b[${this.nullCellCount}C`;
      }
      this.nullCellCount = 0;
    }
    this.currentRow += cell.getChars();
    this.lastContentCursorRow = this.lastCursorRow = row;
    this.lastContentCursorCol = this.lastCursorCol = col + cell.getWidth();
  }

  /** Pads the row's coloured blanks and returns what separates it from the next row. */
  private rowEnd(row: number, isLastRow: boolean): string {
    if (this.nullCellCount > 0 && !equalBg(this.cursorStyle, this.backgroundCell)) {
      this.currentRow += `\x1b[${this.nullCellCount}X`;
    }
    if (isLastRow) return '';
    if (this.bce(row)) this.reloadBackground();
    const currentLine = this.buffer.getLine(row) as IBufferLine;
    const nextLine = this.buffer.getLine(row + 1) as IBufferLine;
    if (!nextLine.isWrapped) {
      this.lastCursorRow = row + 1;
      this.lastCursorCol = 0;
      return '\r\n';
    }
    const lastChar = currentLine.getCell(currentLine.length - 1, this.lastChar) ?? this.lastChar;
    const lastSecondChar =
      currentLine.getCell(currentLine.length - 2, this.lastSecondChar) ?? this.lastSecondChar;
    const nextFirstChar = nextLine.getCell(0, this.nextFirstChar) ?? this.nextFirstChar;
    const isNextWide = nextFirstChar.getWidth() > 1;
    // Whether printing alone could have wrapped here (the cursor cannot be moved past the
    // last column by a control sequence); the addon's operator precedence, kept as it is.
    let isValid = false;
    if (
      nextFirstChar.getChars() && isNextWide ? this.nullCellCount <= 1 : this.nullCellCount <= 0
    ) {
      if ((lastChar.getChars() || lastChar.getWidth() === 0) && equalBg(lastChar, nextFirstChar)) {
        isValid = true;
      }
      if (
        isNextWide &&
        (lastSecondChar.getChars() || lastSecondChar.getWidth() === 0) &&
        equalBg(lastChar, nextFirstChar) &&
        equalBg(lastSecondChar, nextFirstChar)
      ) {
        isValid = true;
      }
    }
    if (isValid) return '';
    // Force the wrap: print enough to overflow, then step back and erase it.
    let sep = `${'-'.repeat(this.nullCellCount + 1)}\x1b[1D\x1b[1X`;
    if (this.nullCellCount > 0) {
      const filled = currentLine.length - this.nullCellCount;
      sep += `\x1b[A\x1b[${filled}C\x1b[${this.nullCellCount}X\x1b[${filled}D\x1b[B`;
    }
    this.lastContentCursorRow = row + 1;
    this.lastContentCursorCol = 0;
    this.lastCursorRow = row + 1;
    this.lastCursorCol = 0;
    return sep;
  }

  private reloadBackground(): void {
    this.buffer.getLine(this.cursorStyleRow)?.getCell(this.cursorStyleCol, this.backgroundCell);
  }

  /** The state a chunk starting at `row` is entered with, as far as its text depends on it. */
  chunkKey(row: number): string {
    const reloaded = this.buffer.getLine(this.cursorStyleRow)?.getCell(this.cursorStyleCol);
    return `${this.bce(row) ? 1 : 0};${styleKey(this.cursorStyle)};${bgKey(this.backgroundCell)};${reloaded ? bgKey(reloaded) : '-'}`;
  }

  private flushRows(): void {
    if (this.rowTexts.length === 0) return;
    let text = '';
    for (let i = 0; i < this.rowTexts.length; i++) text += `${this.rowTexts[i]}${this.rowSeps[i]}`;
    this.parts.push(encoder.encode(text));
    this.rowTexts = [];
    this.rowSeps = [];
  }

  /** Serializes rows `row`..`row + CHUNK_ROWS - 1` (none of them the last) as a chunk. */
  writeChunk(row: number, key: string): Chunk {
    this.flushRows();
    const styleChanges = this.styleChanges;
    for (let r = row; r < row + CHUNK_ROWS; r++) this.writeRow(r);
    this.flushRows();
    const bytes = this.parts[this.parts.length - 1] as Uint8Array;
    const changed = this.styleChanges !== styleChanges;
    return {
      key,
      bytes,
      style: changed ? { row: this.cursorStyleRow - row, col: this.cursorStyleCol } : null,
    };
  }

  /** Appends a cached chunk starting at `row` and leaves the state as writing it would. */
  replayChunk(row: number, chunk: Chunk): void {
    this.flushRows();
    this.parts.push(chunk.bytes);
    if (chunk.style) {
      this.cursorStyleRow = row + chunk.style.row;
      this.cursorStyleCol = chunk.style.col;
      this.buffer.getLine(this.cursorStyleRow)?.getCell(this.cursorStyleCol, this.cursorStyle);
    }
    if (this.bce(row)) this.reloadBackground();
  }

  /** The rows written, the cursor put back where it is and the current SGR restored. */
  finish(): Uint8Array[] {
    let rowEnd = this.rowTexts.length;
    // Without scrollback, trailing rows with nothing in them are left out.
    if (this.buffer.length - this.firstRow <= this.term.rows) {
      rowEnd = this.lastContentCursorRow + 1 - this.firstRow;
      this.lastCursorCol = this.lastContentCursorCol;
      this.lastCursorRow = this.lastContentCursorRow;
    }
    let content = '';
    for (let i = 0; i < rowEnd; i++) {
      content += this.rowTexts[i];
      if (i + 1 < rowEnd) content += this.rowSeps[i];
    }
    const realCursorRow = this.buffer.baseY + this.buffer.cursorY;
    const realCursorCol = this.buffer.cursorX;
    if (realCursorRow !== this.lastCursorRow || realCursorCol !== this.lastCursorCol) {
      const down = realCursorRow - this.lastCursorRow;
      if (down > 0) content += `\x1b[${down}B`;
      else if (down < 0) content += `\x1b[${-down}A`;
      const right = realCursorCol - this.lastCursorCol;
      if (right > 0) content += `\x1b[${right}C`;
      else if (right < 0) content += `\x1b[${-right}D`;
    }
    const current = (this.term as unknown as TerminalInternals)._core._inputHandler._curAttrData;
    const sgr = diffStyle(current, this.cursorStyle);
    if (sgr.length > 0) content += `\x1b[${sgr.join(';')}m`;
    this.parts.push(encoder.encode(content));
    return this.parts;
  }
}

function modes(term: Terminal): string {
  const m = term.modes;
  let content = '';
  if (m.applicationCursorKeysMode) content += '\x1b[?1h';
  if (m.applicationKeypadMode) content += '\x1b[?66h';
  if (m.bracketedPasteMode) content += '\x1b[?2004h';
  if (m.insertMode) content += '\x1b[4h';
  if (m.originMode) content += '\x1b[?6h';
  if (m.reverseWraparoundMode) content += '\x1b[?45h';
  if (m.sendFocusMode) content += '\x1b[?1004h';
  if (m.wraparoundMode === false) content += '\x1b[?7l';
  switch (m.mouseTrackingMode) {
    case 'x10':
      content += '\x1b[?9h';
      break;
    case 'vt200':
      content += '\x1b[?1000h';
      break;
    case 'drag':
      content += '\x1b[?1002h';
      break;
    case 'any':
      content += '\x1b[?1003h';
      break;
  }
  return content;
}

/** Serializes one terminal, keeping the scrollback's chunks between calls. */
export class ScreenSerializer {
  private readonly chunks = new Map<number, Chunk>();
  // Chunk boundaries are counted from this line, which the buffer moves up as it trims old
  // lines (and disposes once trimmed itself, or when `ESC [3J` erases the scrollback). It is
  // the newest row of the scrollback when placed: edits on the screen never move it, and it
  // is the last to be trimmed.
  private anchor: Anchor | null = null;
  private anchoredBuffer: unknown = null;
  /** How many rows the last call took from the cache. */
  reusedRows = 0;

  constructor(private readonly term: Terminal) {
    // A resize reflows the scrollback and pulls rows back onto a taller screen.
    term.onResize(() => this.clear());
  }

  /** UTF-8 bytes equal to `new TextEncoder().encode(addon.serialize({ scrollback }))`. */
  serialize(scrollback: number): Uint8Array<ArrayBuffer> {
    const term = this.term;
    const normal = term.buffer.normal;
    const maxRows = normal.length;
    const start = maxRows - Math.max(0, Math.min(scrollback + term.rows, maxRows));
    const end = maxRows - 1;
    const writer = new BufferWriter(term, normal, start, end);
    // A row can be cached once it and the row after it (whose wrap flag ends it) are both
    // above the screen; the row right above the screen is not.
    const lastCacheable = normal.baseY - 2;
    const anchor = lastCacheable - CHUNK_ROWS + 1 >= start ? this.currentAnchor() : null;
    this.reusedRows = 0;
    for (let row = start; row <= end; ) {
      const pos = anchor ? row - anchor.line : 1;
      if (
        anchor &&
        pos % CHUNK_ROWS === 0 &&
        row + CHUNK_ROWS - 1 <= lastCacheable &&
        writer.bce(row) === writer.bce(row + CHUNK_ROWS - 1)
      ) {
        const index = pos / CHUNK_ROWS;
        const key = writer.chunkKey(row);
        let chunk = this.chunks.get(index);
        if (chunk && chunk.key === key) {
          writer.replayChunk(row, chunk);
          this.reusedRows += CHUNK_ROWS;
        } else chunk = writer.writeChunk(row, key);
        this.chunks.set(index, chunk);
        row += CHUNK_ROWS;
        continue;
      }
      writer.writeRow(row);
      row++;
    }
    // Chunks of trimmed rows can never be used again.
    if (anchor) {
      for (const index of this.chunks.keys()) {
        if (anchor.line + index * CHUNK_ROWS < 0) this.chunks.delete(index);
      }
    }
    const parts = writer.finish();
    if (term.buffer.active.type === 'alternate') {
      const alt = term.buffer.alternate;
      const altWriter = new BufferWriter(term, alt, 0, alt.length - 1);
      for (let row = 0; row < alt.length; row++) altWriter.writeRow(row);
      parts.push(encoder.encode('\x1b[?1049h\x1b[H'), ...altWriter.finish());
    }
    const tail = modes(term);
    if (tail) parts.push(encoder.encode(tail));
    let length = 0;
    for (const part of parts) length += part.length;
    const out = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /** The anchor of the current chunks, or a new one when there is none (or the buffer it
   * counted lines in is gone). */
  private currentAnchor(): Anchor {
    const normal = (this.term as unknown as TerminalInternals)._core.buffers.normal;
    if (this.anchor && !this.anchor.isDisposed && this.anchoredBuffer === normal) {
      return this.anchor;
    }
    this.clear();
    this.anchor = normal.addMarker(this.term.buffer.normal.baseY - 1);
    this.anchoredBuffer = normal;
    return this.anchor;
  }

  private clear(): void {
    this.anchor?.dispose();
    this.anchor = null;
    this.anchoredBuffer = null;
    this.chunks.clear();
  }

  dispose(): void {
    this.clear();
  }
}
