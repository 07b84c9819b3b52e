// The service form takes one command line ("python3 -m http.server 8080") while the API wants
// argv (`command` + `args`). Splitting follows POSIX shell quoting for the common cases —
// single quotes, double quotes with \" and \\, backslash escapes — without expansion, so what
// is typed is exactly what runs.

/** Splits a command line into words; throws with a readable message on unbalanced quotes. */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string;
    if (quote === "'") {
      if (char === "'") quote = null;
      else current += char;
    } else if (quote === '"') {
      if (char === '"') quote = null;
      else if (char === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) current += line[++i];
      else current += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (char === '\\' && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quote) throw new Error(`the ${quote === '"' ? 'double' : 'single'} quote is not closed`);
  if (inWord) words.push(current);
  return words;
}

/** The inverse, for showing a stored argv in the form: quotes only the words that need it. */
export function joinCommandLine(words: readonly string[]): string {
  return words
    .map((word) =>
      word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)
        ? word
        : `'${word.replace(/'/g, `'\\''`)}'`,
    )
    .join(' ');
}
