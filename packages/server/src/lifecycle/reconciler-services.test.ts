// After a stop, services come back because the agent restarts them on boot from the
// definitions it persisted on the machine's disk, not because the reconciler does anything.
// Checked here against the real driver and agent, without a server in between (the server
// mirrors its own stored definitions into the agent on top of this).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { AgentClient } from '../agent-client/agent-client.js';
import type { LocalDriver } from '../runtime/local/local-driver.js';
import {
  prepareLocalHost,
  setUpTestDriver,
  type TestDriverSetup,
} from '../runtime/local/test-support.js';

const services = z.object({
  items: z.array(
    z.object({ name: z.string(), status: z.string(), startedAt: z.string().nullable() }),
  ),
});

describe('services after a stop', () => {
  let setup: TestDriverSetup;
  let driver: LocalDriver;
  const id = 'svc-restart';

  before(async () => {
    const { rootfs } = await prepareLocalHost();
    setup = setUpTestDriver(rootfs, 23);
    driver = setup.newDriver();
    await driver.create({
      id,
      name: 'svc',
      size: { cpu: 1, memoryMiB: 512, diskGiB: 1, pids: 256 },
    });
    await driver.start(id);
  });
  after(() => setup?.cleanup());

  test('the agent starts them again on boot, dependencies first', async () => {
    const agent = new AgentClient(await driver.agentEndpoint(id));
    const any = z.unknown();
    await agent.json('PUT', '/v1/services/db', { command: 'sleep', args: ['1000'] }, any);
    await agent.json(
      'PUT',
      '/v1/services/web',
      { command: 'sleep', args: ['1001'], dependsOn: ['db'] },
      any,
    );
    await driver.stop(id);
    await driver.start(id);

    const woken = new AgentClient(await driver.agentEndpoint(id));
    let listed = await woken.json('GET', '/v1/services', undefined, services);
    for (let i = 0; i < 100 && listed.items.some((s) => s.status !== 'running'); i++) {
      await sleep(50);
      listed = await woken.json('GET', '/v1/services', undefined, services);
    }
    const byName = new Map(listed.items.map((s) => [s.name, s]));
    assert.equal(byName.get('db')?.status, 'running');
    assert.equal(byName.get('web')?.status, 'running');
    const db = Date.parse(byName.get('db')?.startedAt ?? '');
    const web = Date.parse(byName.get('web')?.startedAt ?? '');
    assert.ok(db <= web, 'db, which web depends on, started first');
  });
});
