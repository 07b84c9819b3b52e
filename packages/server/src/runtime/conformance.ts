// The behaviour every runtime driver must show, as one node:test suite. A driver's own test
// file calls runtimeDriverSuite with a factory for its subject; the suite drives a single
// machine through its whole life and checks the observed state after every step.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { AgentEndpoint, MachineSpec, RuntimeDriver } from './driver.js';

export interface ConformanceSubject {
  driver: RuntimeDriver;
  /** Runs a shell script inside a started machine as its root user. */
  exec(
    id: string,
    script: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** A second driver over the same host state, as a server restarted after a crash would make. */
  reopen(): Promise<RuntimeDriver>;
  /** Removes whatever the suite's machines left behind, even after a failure. */
  cleanup(): Promise<void>;
}

export function runtimeDriverSuite(
  name: string,
  newSubject: () => Promise<ConformanceSubject>,
): void {
  describe(`runtime driver conformance: ${name}`, () => {
    let subject: ConformanceSubject;
    let driver: RuntimeDriver;
    const spec: MachineSpec = {
      id: `conf-${process.pid}`,
      name: 'conformance',
      size: { cpu: 1, memoryMiB: 256, diskGiB: 1, pids: 128 },
    };
    const id = spec.id;
    const sh = async (script: string) => {
      const result = await subject.exec(id, script);
      assert.equal(result.code, 0, `"${script}" failed: ${result.stderr}`);
      return result.stdout.trim();
    };

    before(async () => {
      subject = await newSubject();
      driver = subject.driver;
    });
    after(async () => {
      await subject?.cleanup();
    });

    it('reports a machine that was never created as absent', async () => {
      assert.equal((await driver.status(id)).state, 'absent');
      await assert.rejects(driver.start(id), /does not exist/);
    });

    it('creates a machine stopped, and creating it again changes nothing', async () => {
      await driver.create(spec);
      assert.equal((await driver.status(id)).state, 'stopped');
      await driver.create(spec);
      assert.equal((await driver.status(id)).state, 'stopped');
      assert.ok((await driver.list()).some((m) => m.id === id && m.state === 'stopped'));
    });

    it('starts a machine whose agent answers with the per-machine secret only', async () => {
      await driver.start(id);
      assert.equal((await driver.status(id)).state, 'started');
      const endpoint = await driver.agentEndpoint(id);
      assert.equal(await agentHealth(endpoint), 200);
      assert.equal(await agentHealth({ ...endpoint, token: 'wrong' }), 401);
    });

    it('treats start on a started machine as a no-op (same boot)', async () => {
      await sh('echo booted > /tmp/boot-marker');
      await driver.start(id);
      assert.equal(await sh('cat /tmp/boot-marker'), 'booted');
    });

    it('keeps a process counting across suspend and resume, without CPU while suspended', async () => {
      await sh(
        `setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done' </dev/null >/dev/null 2>&1 &`,
      );
      await waitFor(async () => Number(await sh('cat /tmp/count 2>/dev/null || echo 0')) > 3);
      const beforeSuspend = Number(await sh('cat /tmp/count'));
      await driver.suspend(id);
      assert.equal((await driver.status(id)).state, 'suspended');
      await driver.suspend(id);
      const endpoint = await driver.agentEndpoint(id);
      assert.equal(await agentHealth(endpoint, 300), 0, 'a suspended agent must not answer');
      await driver.resume(id);
      const atResume = Number(await sh('cat /tmp/count'));
      // 300 ms frozen would be ~15 increments had it kept running; a couple happen around the calls.
      assert.ok(
        atResume - beforeSuspend < 5,
        `counted ${atResume - beforeSuspend} while suspended`,
      );
      await driver.resume(id);
      assert.equal((await driver.status(id)).state, 'started');
      assert.equal(await agentHealth(endpoint), 200);
      await waitFor(async () => Number(await sh('cat /tmp/count')) > atResume + 3);
    });

    it('treats resume of a started machine as a no-op and refuses both on a stopped one', async () => {
      await driver.resume(id);
      await driver.stop(id);
      await assert.rejects(driver.suspend(id), /only a started machine/);
      await assert.rejects(driver.resume(id), /only a suspended machine/);
    });

    it('stops a machine, keeping its files but no processes, and boots it fresh on start', async () => {
      await driver.start(id);
      await sh('echo kept > /root/persist.txt && echo gone > /tmp/boot-marker');
      await driver.stop(id);
      assert.equal((await driver.status(id)).state, 'stopped');
      await driver.stop(id);
      await driver.start(id);
      assert.equal(await sh('cat /root/persist.txt'), 'kept');
      assert.equal(await sh('cat /tmp/boot-marker 2>/dev/null || echo none'), 'none');
    });

    it('keeps a stopped machine’s files for a restarted server', async () => {
      await driver.stop(id);
      const restarted = await subject.reopen();
      assert.equal((await restarted.status(id)).state, 'stopped');
      await restarted.start(id);
      assert.equal(await sh('cat /root/persist.txt'), 'kept');
    });

    it('stops a suspended machine', async () => {
      await driver.suspend(id);
      await driver.stop(id);
      assert.equal((await driver.status(id)).state, 'stopped');
    });

    it('lets a new driver instance adopt a running machine instead of starting a second one', async () => {
      await driver.start(id);
      await sh('echo first-boot > /tmp/boot-marker');
      const reopened = await subject.reopen();
      assert.equal((await reopened.status(id)).state, 'started');
      assert.ok((await reopened.list()).some((m) => m.id === id && m.state === 'started'));
      await reopened.start(id);
      assert.equal(await sh('cat /tmp/boot-marker'), 'first-boot');
      assert.equal(await agentHealth(await reopened.agentEndpoint(id)), 200);
      await reopened.suspend(id);
      assert.equal((await driver.status(id)).state, 'suspended');
      await reopened.resume(id);
    });

    it('destroys a running machine completely, and destroying it again changes nothing', async () => {
      const endpoint = await driver.agentEndpoint(id);
      await driver.destroy(id);
      assert.equal((await driver.status(id)).state, 'absent');
      assert.equal(await agentHealth(endpoint), 0);
      assert.ok(!(await driver.list()).some((m) => m.id === id));
      await driver.destroy(id);
      await assert.rejects(driver.agentEndpoint(id), /does not exist/);
    });
  });
}

/** The agent's HTTP status for GET /v1/health, or 0 when it does not answer in time. */
export function agentHealth(endpoint: AgentEndpoint, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        createConnection: endpoint.connect,
        path: '/v1/health',
        headers: { authorization: `Bearer ${endpoint.token}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      resolve(0);
    }, timeoutMs);
    req.on('error', () => resolve(0));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
