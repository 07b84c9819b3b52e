import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds a program the way execvp would, so a typo is a clear 4xx instead of a child that
 * dies right after spawning. */
export function resolveCommand(program: string, path: string | undefined): string | null {
  if (program.includes('/')) return isExecutable(program) ? program : null;
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The user's login shell: bash when the image has it. */
export function loginShell(): string[] {
  if (isExecutable('/bin/bash')) return ['/bin/bash', '-l'];
  return [
    process.env.SHELL && isExecutable(process.env.SHELL) ? process.env.SHELL : '/bin/sh',
    '-l',
  ];
}
