import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, errorFromResponse, formErrorsFrom } from './api-client.js';

test('the error envelope becomes an ApiError with the server code and message', () => {
  const error = errorFromResponse(409, {
    error: { code: 'name_taken', message: 'A machine named web already exists.' },
  });
  assert.equal(error.status, 409);
  assert.equal(error.code, 'name_taken');
  assert.equal(error.message, 'A machine named web already exists.');
  assert.equal(error.field, null);
});

test('a field named by the server lands next to that field', () => {
  const cases: unknown[] = [
    { error: { code: 'invalid', message: 'must be a valid email', field: 'email' } },
    { error: { code: 'invalid', message: 'must be a valid email', field: 'body.email' } },
    {
      error: {
        code: 'invalid',
        message: 'must be a valid email',
        details: [{ path: ['email'], message: 'Invalid email' }],
      },
    },
    { error: { code: 'invalid', message: 'body/email must be a valid email' } },
    { error: { code: 'invalid_input', message: 'email: must be a valid email' } },
    { error: { code: 'invalid_input', message: 'body.email: must be a valid email' } },
  ];
  for (const body of cases) {
    const form = formErrorsFrom(errorFromResponse(400, body), ['email', 'password']);
    assert.deepEqual(
      form,
      { fields: { email: 'Must be a valid email' }, form: null },
      JSON.stringify(body),
    );
  }
});

test('a message that starts with a field name is shown at that field', () => {
  const error = errorFromResponse(409, {
    error: { code: 'conflict', message: 'slug is already taken' },
  });
  assert.deepEqual(formErrorsFrom(error, ['name', 'slug']), {
    fields: { slug: 'slug is already taken' },
    form: null,
  });
});

test('a conflict code that starts with a field name lands at that field', () => {
  const error = errorFromResponse(409, {
    error: { code: 'slug_taken', message: 'The org slug "acme" is taken.' },
  });
  assert.deepEqual(formErrorsFrom(error, ['name', 'slug']), {
    fields: { slug: 'The org slug "acme" is taken.' },
    form: null,
  });
  const invalid = errorFromResponse(400, { error: { code: 'invalid_json', message: 'Bad JSON' } });
  assert.deepEqual(formErrorsFrom(invalid, ['name']), { fields: {}, form: 'Bad JSON' });
});

test('an error about no field of the form is shown for the whole form', () => {
  const wrongPassword = errorFromResponse(401, {
    error: { code: 'invalid_credentials', message: 'Email or password is wrong.' },
  });
  assert.deepEqual(formErrorsFrom(wrongPassword, ['email', 'password']), {
    fields: {},
    form: 'Email or password is wrong.',
  });
  const otherField = errorFromResponse(400, {
    error: { code: 'x', message: 'bad', field: 'size' },
  });
  assert.deepEqual(formErrorsFrom(otherField, ['name']), { fields: {}, form: 'bad' });
});

test('a response without an envelope still gets a plain-words message', () => {
  assert.match(errorFromResponse(502, '<html>bad gateway</html>').message, /server had a problem/);
  assert.match(errorFromResponse(403, null).message, /permission/);
  assert.equal(errorFromResponse(404, { error: 'nope' }).code, 'http_404');
});

test('rate limiting says when to try again', () => {
  const error = errorFromResponse(
    429,
    { error: { code: 'rate_limited', message: 'Too many sign-in attempts' } },
    '30',
  );
  assert.equal(error.retryAfterSeconds, 30);
  assert.equal(error.message, 'Too many sign-in attempts. Try again in 30 s.');
});

test('a thrown non-API error is shown as is', () => {
  assert.deepEqual(formErrorsFrom(new Error('boom'), ['name']), { fields: {}, form: 'boom' });
  assert.ok(new ApiError(400, 'c', 'm') instanceof Error);
});
