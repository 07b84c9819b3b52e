import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clipboardHint, clipboardShortcut, type KeyPress } from './terminal-keys.js';

const key = (code: string, modifiers: Partial<KeyPress> = {}): KeyPress => ({
  type: 'keydown',
  code,
  ctrlKey: false,
  shiftKey: false,
  altKey: false,
  metaKey: false,
  ...modifiers,
});

test('Ctrl+Shift+C copies and Ctrl+Shift+V pastes', () => {
  assert.equal(clipboardShortcut(key('KeyC', { ctrlKey: true, shiftKey: true })), 'copy');
  assert.equal(clipboardShortcut(key('KeyV', { ctrlKey: true, shiftKey: true })), 'paste');
});

test('plain Ctrl+C and Ctrl+V stay with the program in the terminal', () => {
  assert.equal(clipboardShortcut(key('KeyC', { ctrlKey: true })), null);
  assert.equal(clipboardShortcut(key('KeyV', { ctrlKey: true })), null);
  assert.equal(clipboardShortcut(key('KeyC', { shiftKey: true })), null);
});

test('other modifier mixes and keys are not clipboard shortcuts', () => {
  assert.equal(
    clipboardShortcut(key('KeyC', { ctrlKey: true, shiftKey: true, altKey: true })),
    null,
  );
  assert.equal(
    clipboardShortcut(key('KeyV', { ctrlKey: true, shiftKey: true, metaKey: true })),
    null,
  );
  assert.equal(clipboardShortcut(key('KeyX', { ctrlKey: true, shiftKey: true })), null);
});

test('the hint names the platform’s shortcuts', () => {
  assert.match(clipboardHint('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)'), /⌘C/);
  assert.match(clipboardHint('Mozilla/5.0 (X11; Linux x86_64)'), /Ctrl\+Shift\+C/);
  assert.match(clipboardHint('Mozilla/5.0 (Windows NT 10.0; Win64; x64)'), /Ctrl\+Shift\+V/);
});
