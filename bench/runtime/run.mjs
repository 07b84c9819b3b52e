// Local runtime figures, side by side in one run: create → agent ready, cold start, warm
// resume, stop and suspend, and host memory per idle machine. Needs root on Linux; uses the
// cached base image (SNAPVM_IMAGE_CACHE, default /var/cache/snapvm-images). RUNS=N changes the
// sample count (default 20), MACHINES=N the memory sample (default 10). SNAPVM_TEST_AGENT=stub
// boots a minimal stand-in instead of the real agent bundle.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { agentHealth } from '../../packages/server/dist/runtime/conformance.js';
import {
  prepareLocalHost,
  setUpTestDriver,
} from '../../packages/server/dist/runtime/local/test-support.js';
import { requireRootOnLinux } from '../require-root.mjs';

const runs = Number(process.env.RUNS ?? 20);
const machineCount = Number(process.env.MACHINES ?? 10);
requireRootOnLinux('runtime');

const size = { cpu: 1, memoryMiB: 512, diskGiB: 2, pids: 256 };
const { rootfs } = await prepareLocalHost();
const setup = setUpTestDriver(rootfs, 9);
const driver = setup.newDriver();
const results = {};

const time = async (fn) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const report = (name, samples, note) => {
  const p50 = quantile(samples, 0.5);
  const p95 = quantile(samples, 0.95);
  results[name] = { p50, p95, n: samples.length, samples };
  const fmt = (v) => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  console.log(
    `${name.padEnd(34)} p50 ${fmt(p50).padStart(6)} ms   p95 ${fmt(p95).padStart(6)} ms   (n=${samples.length}; ${note})`,
  );
};
const memAvailable = () =>
  Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
const settle = () => new Promise((r) => setTimeout(r, 1500));
// Proportional set size of every process in a machine's uid range: shared pages (the node
// binary mapped by every machine) are split between their users, so this sums correctly.
const pssOfUidRange = (base) => {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
      if (uid < base || uid >= base + 65536) continue;
      total +=
        Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) * 1024;
    } catch {
      // Exited, or a kernel thread without smaps.
    }
  }
  return total;
};

try {
  console.log(
    `local runtime, ${runs} runs each, agent: ${process.env.SNAPVM_TEST_AGENT === 'stub' ? 'minimal stand-in' : 'real bundle'}`,
  );

  // Baseline: the floor any "agent ready" figure sits on — starting node itself.
  const nodeStart = [];
  for (let i = 0; i < runs; i++) {
    nodeStart.push(await time(async () => spawnSync(process.execPath, ['-e', '0'])));
  }
  report('baseline: node -e 0 on the host', nodeStart, 'the floor under every agent-ready figure');

  const createReady = [];
  for (let i = 0; i < runs; i++) {
    const id = `bench-c${i}`;
    createReady.push(
      await time(async () => {
        await driver.create({ id, name: `bench-c${i}`, size });
        await driver.start(id);
      }),
    );
    await driver.destroy(id);
  }
  report('create -> agent ready', createReady, 'target p50 < 1000 ms');

  const id = 'bench-main';
  await driver.create({ id, name: 'bench', size });
  await driver.start(id);
  const endpoint = await driver.agentEndpoint(id);

  const cold = [];
  const stop = [];
  for (let i = 0; i < runs; i++) {
    stop.push(await time(() => driver.stop(id)));
    cold.push(await time(() => driver.start(id)));
  }
  report('cold: stopped -> agent ready', cold, 'target p50 < 300 ms; Sprites 1-2 s');
  report('stop (graceful, then kill-all)', stop, 'filesystem kept, zero processes');

  const warm = [];
  const suspend = [];
  for (let i = 0; i < runs; i++) {
    suspend.push(await time(() => driver.suspend(id)));
    warm.push(
      await time(async () => {
        await driver.resume(id);
        if ((await agentHealth(endpoint)) !== 200) throw new Error('agent did not answer');
      }),
    );
  }
  report('warm: suspended -> agent answers', warm, 'target p50 < 20 ms; Sprites 100-500 ms');
  report('suspend (freeze)', suspend, 'memory kept, no CPU');
  await driver.destroy(id);

  // Memory: the host's MemAvailable before and after N idle machines, and the machines'
  // own memory cgroups (which also charge page cache they touched).
  await settle();
  const before = memAvailable();
  const ids = Array.from({ length: machineCount }, (_, i) => `bench-m${i}`);
  for (const m of ids) {
    await driver.create({ id: m, name: m, size });
    await driver.start(m);
  }
  await settle();
  const started = memAvailable();
  const cgroupStarted = ids.reduce((sum, m) => sum + driver.memoryBytes(m), 0) / ids.length;
  const pssStarted = ids.reduce((sum, m) => sum + pssOfUidRange(driver.hostUid(m)), 0) / ids.length;
  for (const m of ids) await driver.suspend(m);
  await settle();
  const suspended = memAvailable();
  const cgroupSuspended = ids.reduce((sum, m) => sum + driver.memoryBytes(m), 0) / ids.length;
  const pssSuspended =
    ids.reduce((sum, m) => sum + pssOfUidRange(driver.hostUid(m)), 0) / ids.length;
  const perStarted = (before - started) / ids.length;
  const perSuspended = (before - suspended) / ids.length;
  const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const total = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
  // MemAvailable also moves with everything else on the host; PSS and the cgroup charge are
  // the machines' own. The estimate takes the largest of the three.
  console.log(
    `host memory per idle started machine  PSS ${mib(pssStarted)}, cgroup charge ${mib(cgroupStarted)}, MemAvailable drop ${mib(perStarted)} (over ${ids.length})`,
  );
  console.log(
    `host memory per suspended machine     PSS ${mib(pssSuspended)}, cgroup charge ${mib(cgroupSuspended)}, MemAvailable drop ${mib(perSuspended)} (the freezer keeps memory)`,
  );
  const perMachine = Math.max(pssStarted, cgroupStarted, perStarted);
  console.log(
    `idle started machines in ${(total / 2 ** 30).toFixed(1)} GiB          about ${Math.floor(total / perMachine)} at ${mib(perMachine)} each (memory alone; the host's own needs not deducted)`,
  );
  results.memory = {
    pssStarted,
    pssSuspended,
    perStarted,
    perSuspended,
    cgroupStarted,
    cgroupSuspended,
    total,
    machines: ids.length,
  };
  for (const m of ids) await driver.destroy(m);

  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/runtime.json', `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await setup.cleanup();
}
