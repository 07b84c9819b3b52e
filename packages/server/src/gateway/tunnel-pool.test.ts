import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { describe, test } from 'node:test';
import type { AgentEndpoint } from '../runtime/driver.js';
import { waitForListener } from './tunnel-pool.js';

const endpoint = (connectPort?: AgentEndpoint['connectPort']): AgentEndpoint => ({
  kind: 'unix',
  socketPath: '/nonexistent',
  token: 'x',
  connect: () => {
    throw new Error('not used');
  },
  ...(connectPort ? { connectPort } : {}),
});
const loopback = endpoint((port) => connect({ host: '127.0.0.1', port }));

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('waiting for a waking machine’s port', () => {
  test('resolves as soon as the port accepts, not at the end of the wait', async () => {
    const port = await freePort();
    const server = createServer((socket) => socket.destroy());
    setTimeout(() => server.listen(port, '127.0.0.1'), 100);
    const started = performance.now();
    await waitForListener(loopback, port, 5_000);
    const waited = performance.now() - started;
    server.close();
    assert.ok(waited >= 90 && waited < 1_000, `waited ${waited} ms`);
  });

  test('gives up after the wait when nothing listens, or without a direct route', async () => {
    const port = await freePort();
    for (const subject of [loopback, endpoint()]) {
      const started = performance.now();
      await waitForListener(subject, port, 60);
      const waited = performance.now() - started;
      assert.ok(waited >= 55 && waited < 1_000, `waited ${waited} ms`);
    }
  });
});
