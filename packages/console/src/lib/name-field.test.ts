import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nameError, slugFromName } from './name-field.js';

test('a valid machine name shows no error', () => {
  assert.equal(nameError('Name', 'web-1'), null);
});

test('an invalid machine name says what is wrong, in the words of the API rules', () => {
  assert.equal(
    nameError('Name', 'Web'),
    'Name may contain only lowercase letters, digits and hyphens',
  );
  assert.equal(nameError('Name', '1web'), 'Name must start with a letter');
  assert.equal(nameError('Name', 'web-'), 'Name must end with a letter or digit');
  assert.equal(nameError('Name', 'my--app'), 'Name must not contain two hyphens in a row');
  assert.equal(nameError('Name', 'a'.repeat(31)), 'Name must be at most 30 characters');
  assert.equal(nameError('Slug', ''), 'Slug must not be empty');
});

test('a slug suggested from an org name is always valid', () => {
  assert.equal(slugFromName('Acme Inc.'), 'acme-inc');
  assert.equal(slugFromName('  42 Crème -- Brûlée  '), 'creme-brulee');
  assert.equal(slugFromName('Ünïcodé Team'), 'unicode-team');
  assert.equal(slugFromName(`${'x'.repeat(29)}-y`), 'x'.repeat(29));
  assert.equal(slugFromName('123 !!!'), '');
  for (const name of ['A--B', 'a - - b', '---', 'Z', 'ab-'.repeat(20)]) {
    const slug = slugFromName(name);
    assert.ok(slug === '' || nameError('Slug', slug) === null, `${name} → ${slug}`);
  }
});
