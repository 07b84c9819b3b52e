import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../config.js';
import { createRuntimes, machineSpec } from './reconciler-runtimes.js';

const quiet = { info() {}, warn() {}, error() {} };

describe('runtimes', () => {
  test('a local runtime that cannot run here is a reason for its machines, not a crash', async () => {
    const config = loadConfig({ SNAPVM_AGENT_DIR: '/nonexistent/agent-bundle' });
    const runtimes = createRuntimes(config.lifecycle, '/nonexistent/data', quiet);
    assert.equal(runtimes.driverFor('local'), undefined);
    assert.match(runtimes.unavailableReason('local'), /agent bundle is missing.*npm run build/);
    assert.match(
      runtimes.unavailableReason('sprites'),
      /sprites runtime is not available on this server yet/,
    );
    await runtimes.close();
  });

  test('machine sizes become the driver limits', () => {
    assert.deepEqual(machineSpec({ id: 'm1', name: 'box', size: 'medium' }), {
      id: 'm1',
      name: 'box',
      size: { cpu: 2, memoryMiB: 4096, diskGiB: 20, pids: 2048 },
    });
  });

  test('bad lifecycle settings stop start-up naming the variable', () => {
    assert.throws(() => loadConfig({ SNAPVM_LIFECYCLE: 'maybe' }), /SNAPVM_LIFECYCLE/);
    assert.throws(() => loadConfig({ SNAPVM_MACHINE_SUBNET: '10.0.0' }), /SNAPVM_MACHINE_SUBNET/);
    assert.throws(() => loadConfig({ SNAPVM_IDLE_STOP_SECONDS: '-1' }), /SNAPVM_IDLE_STOP_SECONDS/);
    const off = loadConfig({ SNAPVM_IDLE_SUSPEND_SECONDS: '0' });
    assert.equal(off.lifecycle.idleSuspendSeconds, null, '0 turns the tier off');
    assert.equal(off.lifecycle.idleStopSeconds, 3600);
  });
});
