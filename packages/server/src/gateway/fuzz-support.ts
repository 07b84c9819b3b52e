// Seeded mutation fuzzing for the relay's parsers (http1.test.ts, native-relay.test.ts).

/** A small seeded PRNG (mulberry32), so a failing mutant can be reproduced. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pickWith =
  (random: () => number) =>
  <T>(list: readonly T[]): T =>
    list[Math.floor(random() * list.length)] as T;

/**
 * One mutation of a head (text through its blank line), landing before the blank line: a byte
 * replaced, inserted or deleted (from `alphabet`), or a line duplicated.
 */
export function mutateHead(
  random: () => number,
  text: string,
  alphabet: readonly string[],
): string {
  const pick = pickWith(random);
  const end = text.length - 4;
  const at = Math.floor(random() * (end + 1));
  switch (Math.floor(random() * 5)) {
    case 0:
      return text.slice(0, at) + pick(alphabet) + text.slice(at + 1);
    case 1:
    case 2:
      return text.slice(0, at) + pick(alphabet) + text.slice(at);
    case 3:
      return text.slice(0, at) + text.slice(at + 1);
    default: {
      const lines = text.slice(0, end).split('\r\n');
      const line = Math.floor(random() * lines.length);
      lines.splice(line, 0, lines[line] as string);
      return `${lines.join('\r\n')}\r\n\r\n`;
    }
  }
}
