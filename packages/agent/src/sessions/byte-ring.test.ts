import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteRing } from './byte-ring.js';

test('a ring returns exactly the bytes after an offset, across wrap-around', () => {
  const ring = new ByteRing(8);
  ring.write(Buffer.from('abcde'));
  ring.write(Buffer.from('fghij'));
  assert.equal(ring.startOffset, 2);
  assert.equal(ring.endOffset, 10);
  assert.equal(ring.readFrom(4)?.toString(), 'efghij');
  assert.equal(ring.readFrom(10)?.toString(), '');
  assert.equal(ring.readFrom(1), null, 'evicted bytes are not replayed');
  assert.equal(ring.readFrom(11), null, 'future offsets are refused');
});

test('a chunk larger than the ring keeps only its tail', () => {
  const ring = new ByteRing(4);
  ring.write(Buffer.from('0123456789'));
  assert.equal(ring.startOffset, 6);
  assert.equal(ring.readFrom(6)?.toString(), '6789');
});

test('a replay start inside a UTF-8 character moves back to the character start', () => {
  const ring = new ByteRing(16);
  ring.write(Buffer.from('a€b')); // € is e2 82 ac
  assert.equal(ring.alignToCharStart(3), 1);
  assert.equal(ring.alignToCharStart(1), 1);
  assert.equal(ring.alignToCharStart(4), 4);
});
