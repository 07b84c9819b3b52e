import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CgroupLayout, detectCgroupLayout, MachineCgroup } from './cgroups.js';

const mounts = (lines: string[]) => {
  const dir = mkdtempSync(join(tmpdir(), 'snapvm-mounts-'));
  writeFileSync(join(dir, 'mounts'), `${lines.join('\n')}\n`);
  return { file: join(dir, 'mounts'), done: () => rmSync(dir, { recursive: true }) };
};

describe('cgroup layout detection', () => {
  it('detects a pure cgroup v2 host', () => {
    const m = mounts(['cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0']);
    assert.deepEqual(detectCgroupLayout(m.file), {
      version: 2,
      hierarchies: ['/sys/fs/cgroup'],
      controllers: {},
    });
    m.done();
  });

  it('detects v1 with combined controllers and joins every hierarchy but cpuset', () => {
    const m = mounts([
      'tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0',
      'cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0',
      'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0',
      'cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,nodev,noexec,relatime,cpuset 0 0',
      'cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0',
      'cgroup /sys/fs/cgroup/pids cgroup rw,nosuid,nodev,noexec,relatime,pids 0 0',
      'cgroup /sys/fs/cgroup/freezer cgroup rw,nosuid,nodev,noexec,relatime,freezer 0 0',
    ]);
    const layout = detectCgroupLayout(m.file);
    assert.equal(layout.version, 1);
    assert.ok(!layout.hierarchies.includes('/sys/fs/cgroup/cpuset'));
    assert.ok(layout.hierarchies.includes('/sys/fs/cgroup/unified'));
    assert.ok(layout.hierarchies.includes('/sys/fs/cgroup/systemd'));
    assert.equal(layout.controllers.cpu, '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(layout.controllers.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
    m.done();
  });

  it('refuses a v1 host without the freezer, naming the controller', () => {
    const m = mounts([
      'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0',
      'cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0',
    ]);
    assert.throws(() => detectCgroupLayout(m.file), /"freezer" controller/);
    m.done();
  });
});

// This host is cgroup v1, but its cgroup2 "unified" mount has the v2 core files (freeze,
// kill, events) without controllers: enough to run the v2 freezer and kill-all for real.
const unified = '/sys/fs/cgroup/unified';
const v2Skip = existsSync(join(unified, 'cgroup.subtree_control'))
  ? undefined
  : 'no cgroup2 mount at /sys/fs/cgroup/unified';

describe('cgroup v2 freezer and kill-all', { skip: v2Skip }, () => {
  const layout: CgroupLayout = { version: 2, hierarchies: [unified], controllers: {} };

  it('refuses to create limits when the v2 controllers are missing', () => {
    const cgroup = new MachineCgroup(layout, `snapvm-v2test-${process.pid}/m`);
    assert.throws(
      () => cgroup.create({ cpu: 1, memoryMiB: 256, pids: 64 }),
      /controller "memory" is not available/,
    );
  });

  it('freezes, thaws and kills every process of a v2 group, then removes it', async () => {
    const group = `snapvm-v2test-${process.pid}`;
    const cgroup = new MachineCgroup(layout, group);
    mkdirSync(join(unified, group));
    const sleeper = spawn(
      'sh',
      ['-c', `echo $$ > ${join(unified, group, 'cgroup.procs')}; sleep 30 & sleep 30`],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise((r) => sleeper.once('exit', r));
    try {
      await waitFor(() => cgroup.pids().length === 3);
      await cgroup.freeze();
      assert.ok(cgroup.isFrozen());
      await cgroup.thaw();
      assert.ok(!cgroup.isFrozen());
      await cgroup.killAll();
      assert.deepEqual(cgroup.pids(), []);
      await exited;
      await cgroup.remove();
      assert.ok(!cgroup.exists());
    } finally {
      sleeper.kill('SIGKILL');
      try {
        rmdirSync(join(unified, group));
      } catch {
        // Removed by the test itself.
      }
    }
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(check(), 'condition not met in time');
}
