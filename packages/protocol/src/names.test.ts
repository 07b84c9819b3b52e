import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nameProblem, nameSchema } from './names.js';

test('valid names are accepted', () => {
  for (const name of ['a', 'web', 'my-app-2', 'a1', 'x'.repeat(30)]) {
    assert.equal(nameProblem(name), null, name);
    assert.equal(nameSchema.safeParse(name).success, true, name);
  }
});

test('invalid names are refused with the reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['x'.repeat(31), /at most 30/],
    ['Web', /lowercase/],
    ['my_app', /lowercase/],
    ['1abc', /start with a letter/],
    ['-abc', /start with a letter/],
    ['abc-', /end with a letter or digit/],
    ['my--app', /two hyphens/],
  ];
  for (const [name, reason] of cases) {
    assert.match(nameProblem(name) ?? '', reason, name);
    assert.equal(nameSchema.safeParse(name).success, false, name);
  }
});
