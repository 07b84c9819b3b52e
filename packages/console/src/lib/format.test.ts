import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAge, formatDuration } from './format.js';

test('idle timeouts read as the two largest units', () => {
  assert.equal(formatDuration(900), '15 min');
  assert.equal(formatDuration(7200), '2 h');
  assert.equal(formatDuration(90), '1 min 30 s');
  assert.equal(formatDuration(90061), '1 d 1 h');
  assert.equal(formatDuration(0), '0 s');
});

test('event ages are relative to now', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(formatAge('2026-01-01T11:59:58Z', now), 'just now');
  assert.equal(formatAge('2026-01-01T11:59:30Z', now), '30 s ago');
  assert.equal(formatAge('2026-01-01T11:50:00Z', now), '10 min ago');
  assert.equal(formatAge('2026-01-01T09:00:00Z', now), '3 h ago');
  assert.equal(formatAge('2025-12-30T12:00:00Z', now), '2 d ago');
  assert.equal(formatAge('not a date', now), '');
});
