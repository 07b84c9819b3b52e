import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConflictError, RateLimitedError } from '../errors.js';
import { translateError } from './error-handler.js';

const databaseError = (code: string) => Object.assign(new Error('db says no'), { code });

test('typed errors keep their status, code, message and headers', () => {
  assert.deepEqual(translateError(new ConflictError('Name taken.', 'name_taken')), {
    status: 409,
    code: 'name_taken',
    message: 'Name taken.',
    headers: {},
  });
  assert.equal(translateError(new RateLimitedError(7))?.headers?.['retry-after'], '7');
});

test('database errors a doer did not catch map to client errors, never 500', () => {
  assert.equal(translateError(databaseError('23505'))?.status, 409);
  assert.equal(translateError(databaseError('42501'))?.status, 403);
  assert.equal(translateError(databaseError('22P02'))?.status, 400);
});

test('a database that cannot be reached is a 503, not a 500', () => {
  assert.equal(translateError(databaseError('57P01'))?.status, 503);
  assert.equal(translateError(databaseError('ECONNREFUSED'))?.status, 503);
});

test('anything unexpected is left for the generic 500, its details unexposed', () => {
  assert.equal(translateError(new TypeError('cannot read x of undefined')), null);
  assert.equal(translateError(databaseError('XX000')), null);
});
