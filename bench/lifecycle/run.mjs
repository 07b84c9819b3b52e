// Wake figures through the whole server, side by side in one run with the driver alone:
// "POST .../exec answers" on a started, a suspended (warm) and a stopped (cold) machine,
// against driver.resume/start → agent health on a machine the server does not manage.
// Needs root on Linux and the cached base image. RUNS=N changes the sample count (default 20).

import { mkdirSync, writeFileSync } from 'node:fs';
import {
  prepareLifecycleHost,
  signUpOwner,
  waitForMachine,
} from '../../packages/server/dist/lifecycle/reconciler-test-support.js';
import { agentHealth } from '../../packages/server/dist/runtime/conformance.js';
import { requireRootOnLinux } from '../require-root.mjs';

const runs = Number(process.env.RUNS ?? 20);
requireRootOnLinux('lifecycle');

const host = await prepareLifecycleHost(24, { SNAPVM_RECONCILE_INTERVAL_MS: '600000' });
const results = {};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const report = (name, samples, note) => {
  const p50 = quantile(samples, 0.5);
  const p95 = quantile(samples, 0.95);
  results[name] = { p50, p95, n: samples.length };
  const fmt = (v) => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  console.log(
    `${name.padEnd(40)} p50 ${fmt(p50).padStart(6)} ms   p95 ${fmt(p95).padStart(6)} ms   (n=${samples.length}; ${note})`,
  );
};
const time = async (fn) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

try {
  const server = await host.start();
  const owner = await signUpOwner(server.url);
  const path = '/api/v1/orgs/acme/machines/bench';
  if ((await owner.post('/api/v1/orgs/acme/machines', { name: 'bench' })).status !== 201)
    throw new Error('create failed');
  await waitForMachine(owner, path, (m) => m.state === 'started');
  const exec = async () => {
    const res = await owner.post(`${path}/exec`, { command: ['true'] });
    if (res.status !== 200 || res.body.exitCode !== 0) throw new Error(`exec: ${res.text}`);
  };
  const settleIn = async (action, state) => {
    if ((await owner.post(`${path}/${action}`)).status !== 202) throw new Error(action);
    await waitForMachine(owner, path, (m) => m.state === state);
  };

  const driver = host.driver();
  const raw = 'bench-raw';
  await driver.create({
    id: raw,
    name: 'raw',
    size: { cpu: 1, memoryMiB: 1024, diskGiB: 5, pids: 512 },
  });
  await driver.start(raw);
  const ready = async () => {
    if ((await agentHealth(await driver.agentEndpoint(raw))) !== 200) throw new Error('agent');
  };

  const hot = [];
  const warm = [];
  const cold = [];
  const warmDriver = [];
  const coldDriver = [];
  for (let i = 0; i < runs; i++) {
    hot.push(await time(exec));
    await settleIn('suspend', 'suspended');
    warm.push(await time(exec));
    await settleIn('stop', 'stopped');
    cold.push(await time(exec));

    await driver.suspend(raw);
    warmDriver.push(
      await time(async () => {
        await driver.resume(raw);
        await ready();
      }),
    );
    await driver.stop(raw);
    coldDriver.push(
      await time(async () => {
        await driver.start(raw);
        await ready();
      }),
    );
  }
  report('exec on a started machine (API+agent)', hot, 'the floor under every figure below');
  report('warm: driver resume → agent answers', warmDriver, 'driver only');
  report('warm: suspended → exec answers (API)', warm, 'wake + exec through the server');
  report('cold: driver start → agent answers', coldDriver, 'driver only');
  report('cold: stopped → exec answers (API)', cold, 'wake + exec through the server');
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/lifecycle.json', `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await host.cleanup();
}
