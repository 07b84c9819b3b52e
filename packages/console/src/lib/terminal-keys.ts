/** The parts of a KeyboardEvent the terminal's clipboard shortcuts look at. */
export interface KeyPress {
  type: string;
  code: string;
  ctrlKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

export type ClipboardShortcut = 'copy' | 'paste';

/**
 * Ctrl+Shift+C / Ctrl+Shift+V, as in Linux desktop terminals and VS Code's: plain Ctrl+C and
 * Ctrl+V must reach the program (interrupt, vim's block select). On macOS, Cmd+C / Cmd+V never
 * reach the program, so xterm leaves them to the browser's own copy and paste.
 */
export function clipboardShortcut(event: KeyPress): ClipboardShortcut | null {
  if (!event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return null;
  if (event.code === 'KeyC') return 'copy';
  if (event.code === 'KeyV') return 'paste';
  return null;
}

/** The shortcuts in words for the platform, shown next to the terminal. */
export function clipboardHint(userAgent: string): string {
  return /Mac|iPhone|iPad/.test(userAgent)
    ? '⌘C copies the selection · ⌘V pastes'
    : 'Ctrl+Shift+C copies the selection · Ctrl+Shift+V pastes';
}
