import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpError } from '../http/errors.js';
import { checkDependencies, startOrder } from './dependency-order.js';

const graph = (edges: Record<string, string[]>) =>
  new Map(Object.entries(edges).map(([name, dependsOn]) => [name, { dependsOn }]));

test('dependencies start before the services that need them', () => {
  assert.deepEqual(startOrder(graph({ web: ['api'], api: ['db'], db: [], cache: [] })), [
    'cache',
    'db',
    'api',
    'web',
  ]);
});

test('a cycle is rejected as a conflict naming the services in it', () => {
  assert.throws(
    () => checkDependencies(graph({ a: ['b'], b: ['c'], c: ['a'], d: [] })),
    (err: HttpError) => err.status === 409 && err.message.includes('a, b, c'),
  );
});

test('a missing dependency is rejected naming it', () => {
  assert.throws(
    () => checkDependencies(graph({ web: ['db'] })),
    (err: HttpError) => err.status === 422 && err.message.includes('db'),
  );
});
