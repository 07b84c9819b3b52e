import assert from 'node:assert/strict';
import { test } from 'node:test';
import { draftFor, periodLabel, tierValue } from './idle-form.js';

test('a tier shown by the API becomes a draft in minutes, keeping where it comes from', () => {
  assert.deepEqual(draftFor(300), { mode: 'after', minutes: '5' });
  assert.deepEqual(draftFor(null), { mode: 'never', minutes: '' });
  assert.deepEqual(draftFor(3600, 'org'), { mode: 'inherit', minutes: '60' });
  assert.deepEqual(draftFor(90), { mode: 'after', minutes: '1.5' });
});

test('a draft becomes seconds, null for never, or "inherit"', () => {
  assert.deepEqual(tierValue({ mode: 'after', minutes: ' 15 ' }), { value: 900 });
  assert.deepEqual(tierValue({ mode: 'after', minutes: '1.5' }), { value: 90 });
  assert.deepEqual(tierValue({ mode: 'never', minutes: '15' }), { value: null });
  assert.deepEqual(tierValue({ mode: 'inherit', minutes: '' }), { value: 'inherit' });
});

test('minutes outside what the API accepts are refused before sending', () => {
  assert.match(tierValue({ mode: 'after', minutes: '' }).error ?? '', /number of minutes/);
  assert.match(tierValue({ mode: 'after', minutes: 'soon' }).error ?? '', /number of minutes/);
  assert.match(tierValue({ mode: 'after', minutes: '0.5' }).error ?? '', /At least 1 minute/);
  assert.match(tierValue({ mode: 'after', minutes: '50000' }).error ?? '', /At most 30 days/);
});

test('periods read as durations or never', () => {
  assert.equal(periodLabel(3600), '1 h');
  assert.equal(periodLabel(null), 'never');
});
