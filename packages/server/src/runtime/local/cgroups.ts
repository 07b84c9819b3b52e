// A machine's cgroups: limits from its size, the freezer for suspend, and the kill-all used by
// stop. Works on cgroup v1 (this host: one hierarchy per controller plus name=systemd and a
// cgroup2 "unified" mount) and on a pure cgroup v2 host, detected from /proc/self/mounts.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../driver.js';
import { waitUntil } from './host.js';

export interface CgroupLimits {
  cpu: number;
  memoryMiB: number;
  pids: number;
}

export interface CgroupLayout {
  version: 1 | 2;
  /** v1: every hierarchy a machine joins (its mount point). v2: the single root. */
  hierarchies: string[];
  /** v1: the mount point of each controller ("memory" → /sys/fs/cgroup/memory). */
  controllers: Record<string, string>;
}

const cpuPeriodUs = 100_000;

// Only what a workspace needs: null, zero, full, random, urandom, tty, ptmx and the PTYs.
const allowedDevices = ['c 1:3', 'c 1:5', 'c 1:7', 'c 1:8', 'c 1:9', 'c 5:0', 'c 5:2', 'c 136:*'];

export function detectCgroupLayout(mountsFile = '/proc/self/mounts'): CgroupLayout {
  const mounts = readFileSync(mountsFile, 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2');
  const root = mounts.find((f) => f[1] === '/sys/fs/cgroup');
  if (root?.[2] === 'cgroup2') {
    return { version: 2, hierarchies: ['/sys/fs/cgroup'], controllers: {} };
  }
  const controllers: Record<string, string> = {};
  const hierarchies: string[] = [];
  for (const [, path = '', type, options = ''] of mounts) {
    const names = type === 'cgroup' ? options.split(',') : [];
    // cpuset needs cpus/mems copied into every new group before it can hold a task; machines
    // are not pinned to CPUs, so they stay in the root cpuset.
    if (names.includes('cpuset') || !path.startsWith('/sys/fs/cgroup/')) continue;
    if (hierarchies.includes(path)) continue;
    hierarchies.push(path);
    for (const name of names) controllers[name] = path;
  }
  for (const needed of ['memory', 'cpu', 'pids', 'freezer']) {
    if (!controllers[needed]) {
      throw new RuntimeError(
        `the cgroup v1 "${needed}" controller is not mounted under /sys/fs/cgroup`,
        'unsupported_host',
      );
    }
  }
  return { version: 1, hierarchies, controllers };
}

export class MachineCgroup {
  constructor(
    private readonly layout: CgroupLayout,
    /** Relative group path, e.g. "snapvm/m-123". */
    readonly group: string,
  ) {}

  private dir(hierarchy: string): string {
    return join(hierarchy, this.group);
  }

  /** v1: a controller file (e.g. memory.limit_in_bytes) in this group, if the host has it. */
  private find(file: string): string | undefined {
    const mount = this.layout.controllers[file.slice(0, file.indexOf('.'))];
    if (!mount) return undefined;
    const path = join(this.dir(mount), file);
    return existsSync(path) ? path : undefined;
  }

  /** The files a process writes its PID to in order to join every hierarchy. */
  procsFiles(): string[] {
    return this.layout.hierarchies.map((h) => join(this.dir(h), 'cgroup.procs'));
  }

  exists(): boolean {
    return this.layout.hierarchies.some((h) => existsSync(this.dir(h)));
  }

  create(limits: CgroupLimits): void {
    if (this.layout.version === 2) {
      this.createV2(limits);
      return;
    }
    for (const h of this.layout.hierarchies) mkdirSync(this.dir(h), { recursive: true });
    const memory = this.find('memory.limit_in_bytes') as string;
    const bytes = String(limits.memoryMiB * 1024 * 1024);
    writeFileSync(memory, bytes);
    // memsw exists only with swap accounting; where it does, swap is not a way around the limit.
    const memsw = this.find('memory.memsw.limit_in_bytes');
    if (memsw) writeFileSync(memsw, bytes);
    writeFileSync(this.find('cpu.cfs_period_us') as string, String(cpuPeriodUs));
    writeFileSync(
      this.find('cpu.cfs_quota_us') as string,
      String(Math.round(limits.cpu * cpuPeriodUs)),
    );
    writeFileSync(this.find('pids.max') as string, String(limits.pids));
    const deny = this.find('devices.deny');
    if (deny) {
      writeFileSync(deny, 'a');
      const allow = this.find('devices.allow') as string;
      for (const rule of allowedDevices) writeFileSync(allow, `${rule} rwm`);
    }
  }

  private createV2(limits: CgroupLimits): void {
    const root = this.layout.hierarchies[0] as string;
    const available = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
    for (const c of ['memory', 'cpu', 'pids']) {
      if (!available.includes(c)) {
        throw new RuntimeError(`cgroup v2 controller "${c}" is not available`, 'unsupported_host');
      }
    }
    // Controllers must be enabled in every ancestor's subtree_control, top down.
    let parent = root;
    for (const part of this.group.split('/')) {
      writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory +cpu +pids');
      parent = join(parent, part);
      mkdirSync(parent, { recursive: true });
    }
    const dir = this.dir(root);
    writeFileSync(join(dir, 'memory.max'), String(limits.memoryMiB * 1024 * 1024));
    if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    writeFileSync(join(dir, 'cpu.max'), `${Math.round(limits.cpu * cpuPeriodUs)} ${cpuPeriodUs}`);
    writeFileSync(join(dir, 'pids.max'), String(limits.pids));
    // v2 has no devices files (it needs an eBPF program); the user namespace already denies
    // mknod, and every filesystem a machine sees is nodev.
  }

  pids(): number[] {
    const file =
      this.layout.version === 2
        ? join(this.dir(this.layout.hierarchies[0] as string), 'cgroup.procs')
        : join(this.dir(this.layout.controllers.freezer as string), 'cgroup.procs');
    try {
      const text = readFileSync(file, 'utf8').trim();
      return text ? text.split('\n').map(Number) : [];
    } catch {
      return [];
    }
  }

  isFrozen(): boolean {
    try {
      if (this.layout.version === 2) {
        const events = readFileSync(
          join(this.dir(this.layout.hierarchies[0] as string), 'cgroup.events'),
          'utf8',
        );
        return /^frozen 1$/m.test(events);
      }
      return readFileSync(this.find('freezer.state') as string, 'utf8').trim() === 'FROZEN';
    } catch {
      return false;
    }
  }

  async freeze(timeoutMs = 5_000): Promise<void> {
    await this.setFrozen(true, timeoutMs);
  }

  async thaw(timeoutMs = 5_000): Promise<void> {
    await this.setFrozen(false, timeoutMs);
  }

  private async setFrozen(frozen: boolean, timeoutMs: number): Promise<void> {
    let file: string;
    let value: string;
    let done: () => boolean;
    if (this.layout.version === 2) {
      file = join(this.dir(this.layout.hierarchies[0] as string), 'cgroup.freeze');
      value = frozen ? '1' : '0';
      done = () => this.isFrozen() === frozen;
    } else {
      file = this.find('freezer.state') as string;
      value = frozen ? 'FROZEN' : 'THAWED';
      done = () => readFileSync(file, 'utf8').trim() === value;
    }
    writeFileSync(file, value);
    // Freezing is asynchronous (FREEZING until every task stopped); v1 retries on each write.
    const ok = await waitUntil(
      () => {
        if (done()) return true;
        if (this.layout.version === 1 && frozen) writeFileSync(file, value);
        return false;
      },
      timeoutMs,
      1,
    );
    if (!ok)
      throw new RuntimeError(
        `cgroup ${this.group} did not ${frozen ? 'freeze' : 'thaw'}`,
        'failed',
      );
  }

  /**
   * Kills every process. v1 has no cgroup.kill: freeze first so nothing can fork while the
   * PIDs are read and killed, then thaw so the SIGKILLs are delivered.
   */
  async killAll(timeoutMs = 10_000): Promise<void> {
    if (this.pids().length === 0 && this.strayPids().length === 0) return;
    if (this.layout.version === 2) {
      writeFileSync(join(this.dir(this.layout.hierarchies[0] as string), 'cgroup.kill'), '1');
    } else {
      await this.freeze();
      for (const pid of this.pids()) killQuietly(pid);
      await this.thaw();
      // A process that died halfway through joining the hierarchies can leave a sibling in
      // some of them only (outside the freezer); rmdir would then fail with EBUSY.
      for (const pid of this.strayPids()) killQuietly(pid);
    }
    const empty = () => this.pids().length === 0 && this.strayPids().length === 0;
    if (!(await waitUntil(empty, timeoutMs, 2))) {
      throw new RuntimeError(
        `processes of ${this.group} survived SIGKILL: ${this.pids().join(' ')}`,
        'failed',
      );
    }
  }

  /** v1: processes in this group in any hierarchy other than the freezer. */
  private strayPids(): number[] {
    if (this.layout.version === 2) return [];
    const found = new Set<number>();
    for (const file of this.procsFiles()) {
      try {
        for (const pid of readFileSync(file, 'utf8').split('\n')) if (pid) found.add(Number(pid));
      } catch {
        // Not created in this hierarchy.
      }
    }
    return [...found];
  }

  memoryBytes(): number {
    const file = this.layout.version === 2 ? 'memory.current' : 'memory.usage_in_bytes';
    const path =
      this.layout.version === 2
        ? join(this.dir(this.layout.hierarchies[0] as string), file)
        : this.find(file);
    try {
      return Number(readFileSync(path as string, 'utf8'));
    } catch {
      return 0;
    }
  }

  /** Counts OOM kills inside the machine (the memory cgroup's own counter). */
  oomKills(): number {
    const path =
      this.layout.version === 2
        ? join(this.dir(this.layout.hierarchies[0] as string), 'memory.events')
        : this.find('memory.oom_control');
    try {
      const match = /^oom_kill (\d+)$/m.exec(readFileSync(path as string, 'utf8'));
      return match ? Number(match[1]) : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Killed processes keep their cgroups busy until their parent reaps them; after a server
   * crash that parent is the host's init, which may take a moment, hence the retries. A
   * process still joining (a holder spawned just before a crash) is killed on each round.
   */
  async remove(timeoutMs = 5_000): Promise<void> {
    let lastError: unknown;
    const removed = await waitUntil(
      () => {
        lastError = undefined;
        for (const pid of this.strayPids()) killQuietly(pid);
        for (const h of this.layout.hierarchies) {
          try {
            rmdirSync(this.dir(h));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') lastError = err;
          }
        }
        return lastError === undefined;
      },
      timeoutMs,
      10,
    );
    if (!removed) throw lastError;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Removes the parent group (e.g. "snapvm") from every hierarchy once no machine is in it. */
export function removeEmptyParent(layout: CgroupLayout, parent: string): void {
  for (const h of layout.hierarchies) {
    try {
      rmdirSync(join(h, parent));
    } catch {
      // Still holds machines, or was never created in this hierarchy.
    }
  }
}

/** Groups below `parent` (e.g. "snapvm") in the freezer hierarchy: every running machine. */
export function listCgroups(layout: CgroupLayout, parent: string): string[] {
  const freezer = layout.version === 2 ? layout.hierarchies[0] : layout.controllers.freezer;
  try {
    return readdirSync(join(freezer as string, parent), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}
