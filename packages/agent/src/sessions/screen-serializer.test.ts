import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SerializeAddon } from '@xterm/addon-serialize';
import headless from '@xterm/headless';
import { ScreenSerializer } from './screen-serializer.js';

const { Terminal } = headless;
const decoder = new TextDecoder();

function open(cols: number, rows: number, scrollback: number) {
  const term = new Terminal({ cols, rows, scrollback, allowProposedApi: true, logLevel: 'off' });
  const addon = new SerializeAddon();
  term.loadAddon(addon);
  const serializer = new ScreenSerializer(term);
  const write = (data: string) => new Promise<void>((resolve) => term.write(data, resolve));
  /** Our bytes against the addon's full serialize, for each amount of scrollback. */
  const check = (label: string, histories = [0, 7, 40, 1000]) => {
    for (const history of histories) {
      assert.equal(
        decoder.decode(serializer.serialize(history)),
        addon.serialize({ scrollback: history }),
        `${label}, scrollback ${history}`,
      );
    }
  };
  return { term, serializer, write, check };
}

// Deterministic, so a failure can be replayed.
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Output that exercises what the serializer carries from row to row: colours and flags left
// on across line ends, coloured blanks, wide characters (also where they cannot fit the last
// column), lines that wrap, and cursor moves that leave holes.
const PIECES = [
  'hello ',
  'world\r\n',
  'line\r\nline\r\nline\r\n',
  'x\r\n'.repeat(12),
  '\x1b[32mgreen\r\n\x1b[0mplain\r\n\x1b[1;44m bold on blue \r\n'.repeat(4),
  'x'.repeat(71),
  '漢字テスト',
  'a漢b😀c',
  '\x1b[30G漢',
  '\x1b[29G漢字',
  'e\u0301',
  '\t|',
  '\x1b[31m',
  '\x1b[42m',
  '\x1b[1;3;4m',
  '\x1b[38;5;200m',
  '\x1b[48;2;10;20;30m',
  '\x1b[38;2;1;2;3;103m',
  '\x1b[0m',
  '\x1b[7m',
  '\x1b[2;9;53m',
  '\x1b[5;8m',
  '\x1b[4:3m',
  '\x1b[22;23;24;27;28;29m',
  '\x1b[44m\x1b[K',
  '\x1b[45m\x1b[3X',
  '\x1b[46m  \x1b[49m  ',
  '\x1b[5C',
  '\x1b[3D',
  '\x1b[A',
  '\x1b[3;5H',
  '\x1b[J',
  '\x1b[1K',
  '\x1b[2;6r\x1b[6H\r\n\r\n\x1b[r',
  '\x1b[2L',
  '\x1b[3M',
  '\x1b[H\x1bM',
  '\x1b[1"qprotected\x1b[0"q',
  '\x1b[?1h\x1b[?2004h',
  '\x1b[?1l\x1b[?2004l',
];
// Rarer: what replaces or reflows the scrollback, and the alternate screen.
const EVENTS = ['\x1b[3J', '\x1bc', '\x1b[H\x1b[2J\x1b[3J', '\x1b[?1049h', '\x1b[?1049l'];

describe('screen serializer', () => {
  test('a screen with colours across rows, wide chars and wrapped lines equals the addon', async () => {
    const { write, check } = open(30, 8, 200);
    for (let i = 0; i < 60; i++) {
      await write(`\x1b[3${i % 8}mrow ${i} ${'漢'.repeat(i % 5)}${'-'.repeat(i % 40)}\r\n`);
      if (i % 7 === 0) await write('\x1b[0m\x1b[43m\x1b[K\r\n\x1b[1;4m');
      if (i % 11 === 0) await write('\x1b[30G漢\x1b[0m\r\n');
    }
    check('first call');
    check('second call, from the cache');
    await write('\x1b[?1049h\x1b[2J\x1b[5;10H\x1b[35mhello');
    check('on the alternate screen');
    await write('\x1b[?1049l');
    check('back on the normal screen');
  });

  test('rows above the screen come from the cache once serialized', async () => {
    const { serializer, write, check } = open(40, 10, 500);
    for (let i = 0; i < 300; i++) await write(`\x1b[${31 + (i % 7)};4${i % 8}mline ${i}\r\n`);
    check('cold', [200]);
    assert.equal(serializer.reusedRows, 0);
    await write('typed'); // the screen changes, the scrollback does not
    check('warm', [200]);
    assert.ok(serializer.reusedRows >= 150, `reused ${serializer.reusedRows} rows`);
    await write('\x1b[3J');
    check('after the scrollback was erased', [200]);
    assert.equal(serializer.reusedRows, 0);
  });

  test('random output, serialized after every write, always equals the addon', async () => {
    const next = random(20260207);
    const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] as T;
    // Scrollback 300 trims old lines long before the 2,000 writes end.
    const { term, serializer, write, check } = open(30, 8, 300);
    let reused = 0;
    for (let step = 0; step < 2000; step++) {
      let data = '';
      for (let n = 1 + Math.floor(next() * 5); n > 0; n--) data += pick(PIECES);
      if (next() < 0.02) data += pick(EVENTS);
      await write(data);
      if (next() < 0.01) term.resize(24 + Math.floor(next() * 12), 6 + Math.floor(next() * 4));
      check(`step ${step}`, [0, 40, 1000]);
      reused += serializer.reusedRows;
    }
    // Most of those serializes replayed chunks, or this proved nothing about the cache.
    assert.ok(reused > 2000 * 16, `reused ${reused} rows`);
  });

  test('a resize, a full reset and an erased scrollback each invalidate the cache', async () => {
    // Lines that wrap at 40 columns and not at 60, and lines with a coloured background to
    // the last column, which serialize differently with other text of the same shape.
    const long = (i: number) => `${'abcdefghij'.repeat(3 + (i % 2))}${i}\r\n`;
    const fill = (text: string) => `\x1b[44m\x1b[K${text}\x1b[0m\r\n`;
    const cases = [
      { label: 'resize', first: long, resize: true, sequence: '' },
      {
        label: 'full reset',
        first: (i: number) => fill(`one ${i}`),
        resize: false,
        sequence: '\x1bc',
      },
      {
        label: 'erased scrollback',
        first: (i: number) => fill(`a ${i}`),
        resize: false,
        sequence: '\x1b[3J',
      },
    ];
    for (const { label, first, resize, sequence } of cases) {
      const { term, serializer, write, check } = open(40, 10, 120);
      for (let i = 0; i < 100; i++) await write(first(i));
      check(label, [65]);
      check(label, [65]);
      assert.ok(serializer.reusedRows > 0, label);
      if (resize) term.resize(60, 10);
      if (sequence) {
        await write(sequence);
        for (let i = 0; i < 100; i++) await write(fill(`two ${i}`));
      }
      check(`after the ${label}`, [65]);
      assert.equal(serializer.reusedRows, 0, label);
      // Enough lines to trim some: what the cache counts from must have followed them.
      for (let i = 0; i < 40; i++) await write(fill(`three ${i}`));
      check(`after the ${label} and more lines`, [65]);
    }
  });

  test('a chunk is not reused when entered with another style', async () => {
    const { term, write, check } = open(20, 10, 500);
    for (let i = 0; i < 20; i++) await write('p\r\n');
    // Blank rows keep the red of the line above them; 'x' then needs an SGR reset.
    await write('\x1b[31mRED\r\n');
    for (let i = 0; i < 40; i++) await write('\r\n');
    for (let i = 0; i < 50; i++) await write('x\r\n');
    const normal = term.buffer.normal;
    let red = 0;
    while (!normal.getLine(red)?.translateToString().startsWith('RED')) red++;
    const fromRed = normal.length - term.rows - red;
    check('from the red line', [fromRed]);
    check('from the line below it', [fromRed - 1]);
  });

  // Plain rows whose erases the addon pads with the background it reads from the buffer's
  // first line (its quirk: with no style change since the range began, it reads row 0), and
  // only from the screen's height (16 rows here, one chunk) below the first row serialized.
  // Each scenario runs with 16 shifts of the first row, so that one of them has a chunk
  // start exactly where that padding starts.
  async function redFirstLine() {
    const t = open(20, 16, 100);
    await t.write('\x1b[41mR\x1b[0m\r\n');
    while (t.term.buffer.normal.length < 116) await t.write('p\r\n');
    assert.equal(t.term.buffer.normal.getLine(0)?.getCell(0)?.getBgColor(), 1);
    return t;
  }

  test('a chunk is not reused where the background for erases starts to apply', async () => {
    for (let shift = 0; shift < 16; shift++) {
      const { check } = await redFirstLine();
      check(`shift ${shift}, a chunk before the screen height`, [34 + shift]);
      check(`shift ${shift}, the same chunk at the screen height`, [50 + shift]);
    }
  });

  test('a chunk is not reused when the first line it reads its background from changed', async () => {
    for (let shift = 0; shift < 16; shift++) {
      const { write, check, term } = await redFirstLine();
      check(`shift ${shift}, row 0 red`, [34 + shift]);
      for (let i = 0; i < 16; i++) await write('p\r\n');
      assert.ok(term.buffer.normal.getLine(0)?.getCell(0)?.isBgDefault());
      check(`shift ${shift}, row 0 plain`, [50 + shift]);
    }
  });

  test('the row right above the screen is never cached: the next row can still change', async () => {
    for (let shift = 0; shift < 16; shift++) {
      const { write, check } = open(20, 10, 200);
      for (let i = 0; i < 100; i++) await write(`n${i}\r\n`);
      check(`shift ${shift}, first`, [64]);
      for (let i = 0; i < shift; i++) await write(`m${i}\r\n`);
      // A line that wraps onto a second row, then enough lines to put it at the screen's top.
      await write(`tail\r\n${'A'.repeat(20)}BBBBB\r\n`);
      for (let i = 0; i < 8; i++) await write(`s${i}\r\n`);
      check(`shift ${shift}, before`, [64]);
      // Deleting the screen's top line makes its wrapped second row the new top.
      await write('\x1b[H\x1b[M');
      check(`shift ${shift}, after`, [64]);
    }
  });
});
