// Runs machines on this host: a user namespace mapped to a private uid range, an overlay root
// on the shared read-only image with the machine's own loop-mounted ext4 disk as upper layer,
// PID/mount/UTS/IPC/net/cgroup namespaces, cgroup limits, and a veth on a filtered bridge.
// The recipe and the pitfalls behind each step are in shared/reference/sandbox-recipe.md.
//
// Machines are spawned with setsid, with no PDEATHSIG and stdio going to a log file, so they
// outlive the server; a new driver instance re-finds them through the cgroup tree and checks
// each against the state file written at start (adoption).
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AgentEndpoint,
  type MachineSpec,
  type MachineStatus,
  type RuntimeDriver,
  RuntimeError,
} from '../driver.js';
import { connectAgentSocket } from './agent-socket.js';
import {
  type CgroupLayout,
  detectCgroupLayout,
  listCgroups,
  MachineCgroup,
  removeEmptyParent,
} from './cgroups.js';
import {
  assertLocalHostSupported,
  childPids,
  hostToolEnv,
  isRunning,
  mountsUnder,
  namespaceId,
  namespacePids,
  processStartTime,
  runScript,
  runTool,
  shellQuote,
  startDetachedTool,
  waitUntil,
} from './host.js';
import {
  attachMachine,
  defaultNetworkConfig,
  detachMachine,
  ensureNetwork,
  machineAddress,
  type NetworkConfig,
  teardownNetworkIfUnused,
} from './network.js';
import { type GatedProcess, toolSpawner } from './tool-spawner.js';

export interface LocalDriverOptions {
  /** Where machine disks and state live: <dataDir>/machines/<id>/. */
  dataDir: string;
  /**
   * Where each machine's mount points live: <mountDir>/<id>/{disk,lower,merged}. Separate
   * from the data directory because the machine's own uid must be able to traverse the path
   * to its root (a data dir under /root, mode 0700, would not allow it).
   */
  mountDir?: string;
  /** Resolves the base image's root filesystem (building it on first use). */
  image: () => Promise<string>;
  /** Directory bound read-only at /opt/snapvm; must contain agent.mjs. */
  agentDir: string;
  /** Host uid of root in slot 0's machine; slot N uses uidBase + N * 65536. */
  uidBase?: number;
  network?: NetworkConfig;
  /** cgroup parent group, e.g. "snapvm". */
  cgroupParent?: string;
  agentTimeoutMs?: number;
  /** How long stop waits after SIGTERM before killing everything. */
  stopGraceMs?: number;
  /** The helpers compiled by `npm run build:native -w @snapvm/server`. */
  mountHelper?: string;
  seccompHelper?: string;
  initHelper?: string;
  nodeBinary?: string;
}

interface MachineRecord {
  spec: MachineSpec;
  slot: number;
  token: string;
}

interface StartState {
  init: number;
  startTime: string;
  userns: string;
  pidns: string;
  netns: string;
}

const idPattern = /^[a-z0-9][a-z0-9-]{0,39}$/;
const hostnamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const uidRange = 65536;

export const defaultMountHelper = fileURLToPath(
  new URL('../../native/machine-mounts', import.meta.url),
);
export const defaultSeccompHelper = fileURLToPath(
  new URL('../../native/seccomp-exec', import.meta.url),
);
export const defaultInitHelper = fileURLToPath(
  new URL('../../native/machine-init', import.meta.url),
);

/**
 * What PID 1 of a machine execs once its root is ready: tini reaping orphans, running the
 * agent with a fixed environment (the server's own never reaches a machine). The agent waits
 * on the start gate, fd 3, before it starts services or listens (docs/runtime.md).
 */
const agentEnvironment = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/root',
  'LANG=C.UTF-8',
  'TERM=xterm-256color',
  'SNAPVM_AGENT_SOCKET=/run/snapvm/agent.sock',
  'SNAPVM_AGENT_TOKEN_FILE=/run/snapvm/agent.token',
  'SNAPVM_AGENT_STATE_DIR=/var/lib/snapvm',
  'SNAPVM_AGENT_START_GATE=3',
];
const agentCommand = ['/usr/bin/tini', '--', '/usr/local/bin/node', '/opt/snapvm/agent.mjs'];

export class LocalDriver implements RuntimeDriver {
  readonly kind = 'local';
  private readonly machinesDir: string;
  private readonly mountDir: string;
  private readonly uidBase: number;
  private readonly network: NetworkConfig;
  private readonly cgroupParent: string;
  private readonly layout: CgroupLayout;
  private readonly locks = new Map<string, Promise<unknown>>();
  private networkReady: Promise<void> | undefined;
  private readonly seccompHelper: string;
  private readonly initHelper: string;

  constructor(private readonly options: LocalDriverOptions) {
    assertLocalHostSupported();
    this.machinesDir = join(options.dataDir, 'machines');
    this.mountDir = options.mountDir ?? '/run/snapvm/machines';
    this.uidBase = options.uidBase ?? 200_000;
    this.network = options.network ?? defaultNetworkConfig;
    this.cgroupParent = options.cgroupParent ?? 'snapvm';
    this.layout = detectCgroupLayout();
    this.seccompHelper = options.seccompHelper ?? defaultSeccompHelper;
    this.initHelper = options.initHelper ?? defaultInitHelper;
    // Host tools run from a small helper process (tool-spawner.ts): start it before the first
    // machine needs it.
    toolSpawner.warm();
    for (const helper of [
      options.mountHelper ?? defaultMountHelper,
      this.seccompHelper,
      this.initHelper,
    ]) {
      if (!existsSync(helper)) {
        throw new RuntimeError(
          `the helper ${helper} is missing: run \`npm run build:native -w @snapvm/server\``,
          'unsupported_host',
        );
      }
    }
  }

  // --- public API -------------------------------------------------------------------------

  async create(spec: MachineSpec): Promise<void> {
    validateSpec(spec);
    // Slots are allocated by scanning records, so creates are serialized across machines.
    return this.locked('#create', () => this.locked(spec.id, () => this.createLocked(spec)));
  }

  start(id: string): Promise<void> {
    return this.locked(id, () => this.startLocked(id));
  }

  stop(id: string): Promise<void> {
    return this.locked(id, async () => {
      this.record(id);
      await this.teardown(id, { graceful: true });
    });
  }

  suspend(id: string): Promise<void> {
    return this.locked(id, async () => {
      const { state } = this.observe(id);
      if (state === 'suspended') return;
      if (state !== 'started') {
        throw new RuntimeError(
          `machine ${id} is ${state}; only a started machine can be suspended`,
          'invalid_state',
        );
      }
      await this.cgroup(id).freeze();
    });
  }

  resume(id: string): Promise<void> {
    return this.locked(id, () => this.resumeLocked(id));
  }

  destroy(id: string): Promise<void> {
    return this.locked(id, async () => {
      if (this.observe(id).state === 'absent' && !existsSync(this.machineDir(id))) return;
      // Also cleans up after a half-finished create or destroy (no record, or no directory).
      await this.teardown(id, { graceful: false });
      const image = join(this.machineDir(id), 'disk.img');
      // The loop device detaches asynchronously after the last unmount (autoclear).
      await waitUntil(() => !loopDevicesFor(image).length, 5_000, 5);
      rmSync(this.machineDir(id), { recursive: true, force: true });
      // teardown unmounted everything or threw; never recurse through a mount.
      if (mountsUnder(this.mountPoints(id)).length === 0) {
        rmSync(this.mountPoints(id), { recursive: true, force: true });
      }
    });
  }

  async status(id: string): Promise<MachineStatus> {
    return this.observe(id);
  }

  async list(): Promise<MachineStatus[]> {
    const ids = new Set<string>(listCgroups(this.layout, this.cgroupParent));
    if (existsSync(this.machinesDir)) for (const id of readdirSync(this.machinesDir)) ids.add(id);
    return [...ids].filter((id) => idPattern.test(id)).map((id) => this.observe(id));
  }

  async agentEndpoint(id: string): Promise<AgentEndpoint> {
    const record = this.record(id);
    const socketPath = this.socketPath(id);
    const min = this.uidBase + record.slot * uidRange;
    const address = machineAddress(this.network, record.slot);
    return {
      kind: 'unix',
      socketPath,
      token: record.token,
      connect: () => connectAgentSocket(socketPath, { min, max: min + uidRange }),
      connectPort: (port) => connect({ host: address, port, noDelay: true }),
    };
  }

  async close(): Promise<void> {
    removeEmptyParent(this.layout, this.cgroupParent);
    if (await teardownNetworkIfUnused(this.network)) this.networkReady = undefined;
  }

  /**
   * Runs a command inside a started machine as its root, the way `docker exec` does. The
   * process joins the machine's cgroups before entering its namespaces, so the freezer and
   * stop see it. The agent's exec replaces this for users; tests and tools use it directly.
   */
  async exec(
    id: string,
    argv: string[],
    options: { input?: string; timeoutMs?: number } = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const { state } = this.observe(id);
    if (state !== 'started') {
      throw new RuntimeError(
        `machine ${id} is ${state}; exec needs a started machine`,
        'invalid_state',
      );
    }
    const init = this.readState(id)?.init as number;
    const join = this.cgroup(id)
      .procsFiles()
      .map((f) => `echo $$ > ${f}`)
      .join('\n');
    return runTool(
      'sh',
      [
        '-c',
        `set -e\n${join}\nexec ${shellQuote(this.seccompHelper)} nsenter --target ${init} --all --root --wd -- /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"`,
        'snapvm-exec',
        ...argv,
      ],
      options,
    );
  }

  /** Memory charged to the machine's cgroup (its processes, page cache and kernel objects). */
  memoryBytes(id: string): number {
    return this.cgroup(id).memoryBytes();
  }

  oomKills(id: string): number {
    return this.cgroup(id).oomKills();
  }

  /** The machine's host-side paths, for tests and diagnostics. */
  paths(id: string) {
    const dir = this.machineDir(id);
    const points = this.mountPoints(id);
    return {
      dir,
      disk: join(points, 'disk'),
      upper: join(points, 'disk/upper'),
      console: this.consolePath(id),
    };
  }

  hostUid(id: string): number {
    return this.uidBase + this.record(id).slot * uidRange;
  }

  // --- lifecycle internals ----------------------------------------------------------------

  private async createLocked(spec: MachineSpec): Promise<void> {
    const dir = this.machineDir(spec.id);
    if (existsSync(join(dir, 'machine.json'))) return;
    const slot = this.freeSlot();
    const base = this.uidBase + slot * uidRange;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      const image = join(dir, 'disk.img');
      closeSync(openSync(image, 'w', 0o600));
      await runScript(
        `truncate -s ${spec.size.diskGiB}G "$1"
mkfs.ext4 -q -F -m 0 -E root_owner=${base}:${base} "$1"`,
        'creating the machine disk',
        [image],
      );
      mkdirSync(join(dir, 'run'), { mode: 0o700 });
      chownSync(join(dir, 'run'), base, base);
      const record: MachineRecord = { spec, slot, token: randomBytes(32).toString('base64url') };
      // Written last: its presence means the machine exists.
      writeFileSync(join(dir, 'machine.json'), `${JSON.stringify(record)}\n`, { mode: 0o600 });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async startLocked(id: string): Promise<void> {
    const record = this.record(id);
    const observed = this.observe(id);
    if (observed.state === 'started') {
      // Also a start another process left half done (it died after the gate): init may still
      // be on its way to exec'ing the agent, and the caller is promised an agent that answers.
      await this.waitForAgent(id, this.options.agentTimeoutMs ?? 15_000);
      chmodSync(this.mountPoints(id), 0o700);
      return;
    }
    if (observed.state === 'suspended') return this.resumeLocked(id);
    if (observed.state === 'broken') await this.teardown(id, { graceful: false });

    const rootfs = await this.options.image();
    // Shared by concurrent starts; a failure is retried by the next start.
    this.networkReady ??= ensureNetwork(this.network).catch((err) => {
      this.networkReady = undefined;
      throw err;
    });
    await this.networkReady;
    const base = this.uidBase + record.slot * uidRange;
    const cgroup = this.cgroup(id);
    let holder: number | undefined;
    let machine: GatedProcess | undefined;
    let gateOpen = false;
    let exited = false;
    let init: number | undefined;
    try {
      cgroup.create(record.spec.size);
      holder = await this.spawnNamespaceHolder(cgroup, base);
      await this.mountRoot(id, record, rootfs, holder);
      machine = await this.startMachine(id, record, cgroup, holder, () => {
        exited = true;
      });
      init = await this.waitForInit(machine.pid, () => exited);
      await attachMachine(this.network, record.slot, init);
      // The agent reads the gate; one that already died (a broken bundle) resets it, and
      // waitForAgent reports that with the console's tail.
      gateOpen = true;
      await machine.openGate('go\n');
      this.writeState(id, init);
      // The user namespace lives on in the machine's processes; the holder was only its owner
      // until now, and while it lives the cgroup never looks empty to waitForAgent.
      killQuietly(holder);
      await this.waitForAgent(id, this.options.agentTimeoutMs ?? 15_000);
      // The agent answering means init has pivoted (the gate is read after pivot_root).
      chmodSync(this.mountPoints(id), 0o700);
    } catch (err) {
      // The agent loads while the host wires the network: one that dies at once (a broken
      // bundle) makes the network's nsenter fail, and its own exit is the cause to report.
      const agentFailed = err instanceof RuntimeError && err.code === 'agent_timeout';
      const died = init !== undefined && (exited || !isRunning(init));
      const log = tail(this.consolePath(id));
      await this.teardown(id, { graceful: false }).catch(() => {});
      if (!agentFailed && !died) throw err;
      const cause = agentFailed ? err.message : `machine ${id} exited before its agent answered`;
      throw new RuntimeError(`${cause}${log ? `; console:\n${log}` : ''}`, 'agent_timeout');
    } finally {
      if (holder) killQuietly(holder);
      // A start that failed before the gate closes it (the machine is torn down anyway).
      if (machine && !gateOpen) await machine.openGate('').catch(() => {});
      machine?.release();
    }
  }

  private async resumeLocked(id: string): Promise<void> {
    const { state } = this.observe(id);
    if (state === 'started') return;
    if (state !== 'suspended') {
      throw new RuntimeError(
        `machine ${id} is ${state}; only a suspended machine can be resumed`,
        'invalid_state',
      );
    }
    await this.cgroup(id).thaw();
    await this.waitForAgent(id, this.options.agentTimeoutMs ?? 15_000);
  }

  /** Brings a machine to "stopped" from any state, including leftovers of a crash. */
  private async teardown(id: string, { graceful }: { graceful: boolean }): Promise<void> {
    const cgroup = this.cgroup(id);
    const state = this.readState(id);
    if (graceful && state && this.initMatches(state) && cgroup.pids().length > 0) {
      if (cgroup.isFrozen()) await cgroup.thaw();
      // tini forwards SIGTERM to the agent, which stops services in order; the whole PID
      // namespace goes when tini exits.
      killQuietly(state.init, 'SIGTERM');
      await waitUntil(() => cgroup.pids().length === 0, this.options.stopGraceMs ?? 10_000, 5);
    }
    if (cgroup.exists()) await cgroup.killAll();
    const record = this.readRecord(id);
    if (record) await detachMachine(this.network, record.slot);
    // A process spawned just before a crash may still be joining the cgroups (and holding
    // the console log on the disk open): kill again whenever an unmount finds it busy.
    await this.unmountAll(id, () => cgroup.killAll());
    await cgroup.remove();
    rmSync(join(this.machineDir(id), 'state.json'), { force: true });
    rmSync(this.socketPath(id), { force: true });
  }

  private async unmountAll(id: string, beforeRetry: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const mounts = mountsUnder(this.mountPoints(id)).reverse();
      if (mounts.length === 0) return;
      const result = await runTool('umount', mounts);
      if (result.code === 0) continue;
      if (attempt >= 20) {
        throw new RuntimeError(
          `could not unmount ${mounts.join(', ')}: ${result.stderr.trim()}`,
          'failed',
        );
      }
      await new Promise((r) => setTimeout(r, 25));
      await beforeRetry();
    }
  }

  private async spawnNamespaceHolder(cgroup: MachineCgroup, base: number): Promise<number> {
    // The holder only owns the new user namespace while the parent writes its uid map; no
    // stdio, so it never keeps a pipe to the server open. It joins the machine's cgroups
    // itself, before unsharing, so that a server crash at any point leaves it findable (and
    // killed by the next stop) rather than orphaned.
    const join = cgroup
      .procsFiles()
      .map((f) => `echo $$ > ${f}`)
      .join('\n');
    let pid: number;
    try {
      pid = await startDetachedTool('sh', [
        '-c',
        `set -e\n${join}\nexec unshare --user sleep infinity`,
      ]);
    } catch {
      throw new RuntimeError('could not spawn the user namespace holder', 'failed');
    }
    const ownUserns = namespaceId(process.pid, 'user');
    if (!(await waitUntil(() => namespaceId(pid, 'user') !== ownUserns, 5_000, 1))) {
      throw new RuntimeError('the user namespace holder did not start', 'failed');
    }
    // Host root may map any range; no /etc/subuid or newuidmap involved. The map must exist
    // before anything execs in the namespace or capabilities are lost at execve.
    writeFileSync(`/proc/${pid}/uid_map`, `0 ${base} ${uidRange}`);
    writeFileSync(`/proc/${pid}/gid_map`, `0 ${base} ${uidRange}`);
    return pid;
  }

  private async mountRoot(
    id: string,
    record: MachineRecord,
    rootfs: string,
    holderPid: number,
  ): Promise<void> {
    const dir = this.machineDir(id);
    const base = this.uidBase + record.slot * uidRange;
    const run = join(dir, 'run');
    mkdirSync(run, { recursive: true, mode: 0o700 });
    chownSync(run, base, base);
    rmSync(join(run, 'agent.sock'), { force: true });
    // Only root inside can read the secret: owned by the machine's root, mode 0400.
    const tokenFile = join(run, 'agent.token');
    rmSync(tokenFile, { force: true });
    writeFileSync(tokenFile, record.token, { mode: 0o400 });
    chownSync(tokenFile, base, base);
    writeFileSync(
      join(dir, 'hosts'),
      `127.0.0.1\tlocalhost\n127.0.1.1\t${record.spec.name}\n::1\tlocalhost\n`,
    );
    writeFileSync(join(dir, 'resolv.conf'), machineResolvConf());
    const points = this.mountPoints(id);
    for (const sub of ['disk', 'lower', 'merged']) {
      mkdirSync(join(points, sub), { recursive: true, mode: 0o711 });
    }
    // The machine's init resolves this path (as the machine's uid) until it has pivoted;
    // afterwards the directory is closed to everyone but host root again.
    chmodSync(points, 0o711);
    const node = this.options.nodeBinary ?? process.execPath;
    // native/machine-mounts.c: the disk on a loop device, the idmapped image, the overlay and
    // the binds below (resolved inside the merged root), in one process.
    const result = await runTool(this.options.mountHelper ?? defaultMountHelper, [
      mountsUnder(join(points, 'disk')).length > 0 ? '-' : join(dir, 'disk.img'),
      points,
      rootfs,
      `/proc/${holderPid}/ns/user`,
      String(base),
      ...[node, 'usr/local/bin/node', 'ro,nosuid,nodev'],
      ...[this.options.agentDir, 'opt/snapvm', 'ro,nosuid,nodev'],
      ...[run, 'run/snapvm', 'nosuid,nodev,noexec'],
      ...[join(dir, 'hosts'), 'etc/hosts', 'ro,nosuid,nodev,noexec,ifexists'],
      ...[join(dir, 'resolv.conf'), 'etc/resolv.conf', 'ro,nosuid,nodev,noexec,ifexists'],
    ]);
    if (result.code !== 0) {
      throw new RuntimeError(
        `mounting the machine root filesystem failed: ${result.stderr.trim() || `exit ${result.code}`}`,
        'failed',
      );
    }
    chmodSync(join(points, 'disk'), 0o700);
  }

  private startMachine(
    id: string,
    record: MachineRecord,
    cgroup: MachineCgroup,
    holderPid: number,
    onExit: () => void,
  ): Promise<GatedProcess> {
    const joinCgroups = cgroup
      .procsFiles()
      .map((f) => `echo $$ > ${f}`)
      .join('\n');
    // machine-init (native/machine-init.c) joins the holder's user namespace, makes the PID
    // namespace and forks PID 1, which makes the other namespaces, finishes the root, pivots
    // and execs the agent; the parent that waits for PID 1 stays in the host mount namespace
    // and pins no host mounts (other machines' disks). Started by the tool helper (whose forks
    // are cheap) in its own session, with no PDEATHSIG, so it outlives the server; fd 3 is the
    // start gate. One log per boot, on the machine's own disk: whatever PID 1 and its heirs
    // print counts against the machine's quota instead of growing a host file without bound.
    return toolSpawner.startGated(
      {
        command: 'sh',
        args: [
          '-c',
          `set -e\n${joinCgroups}\nexec ${shellQuote(this.seccompHelper)} ${shellQuote(this.initHelper)} "$@"`,
          'snapvm-start',
          String(holderPid),
          join(this.mountPoints(id), 'merged'),
          record.spec.name,
          ...agentEnvironment,
          '--',
          ...agentCommand,
        ],
        env: hostToolEnv,
        log: this.consolePath(id),
        timeoutMs: 0,
      },
      onExit,
    );
  }

  private async waitForInit(outer: number, exited: () => boolean): Promise<number> {
    const hostNet = namespaceId(process.pid, 'net');
    let init = 0;
    const found = await waitUntil(
      () => {
        if (exited()) return true;
        init = childPids(outer)[0] ?? 0;
        return (
          init > 0 && namespaceId(init, 'net') !== undefined && namespaceId(init, 'net') !== hostNet
        );
      },
      5_000,
      1,
    );
    if (!found || exited())
      throw new RuntimeError('the machine exited while starting (see console.log)', 'failed');
    return init;
  }

  private async waitForAgent(id: string, timeoutMs: number): Promise<void> {
    const endpoint = await this.agentEndpoint(id);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await pingAgent(endpoint)) return;
      if (this.cgroup(id).pids().length === 0) {
        throw new RuntimeError(`machine ${id} exited before its agent answered`, 'agent_timeout');
      }
      await new Promise((r) => setTimeout(r, 3));
    }
    throw new RuntimeError(
      `the agent of machine ${id} did not answer within ${timeoutMs} ms`,
      'agent_timeout',
    );
  }

  // --- observation ------------------------------------------------------------------------

  private observe(id: string): MachineStatus {
    if (!idPattern.test(id)) throw new RuntimeError(`invalid machine id "${id}"`, 'not_found');
    const dir = this.machineDir(id);
    const cgroup = this.cgroup(id);
    const hasRecord = existsSync(join(dir, 'machine.json'));
    const pids = cgroup.pids();
    if (!hasRecord) {
      if (pids.length > 0 || cgroup.exists()) {
        return { id, state: 'broken', detail: 'a cgroup exists for a machine with no record' };
      }
      return { id, state: 'absent' };
    }
    if (pids.length > 0) {
      const state = this.readState(id);
      if (!state)
        return { id, state: 'broken', detail: 'processes run but no start was completed' };
      if (!this.initMatches(state) || !pids.includes(state.init)) {
        return { id, state: 'broken', detail: 'the running init does not match the state file' };
      }
      return { id, state: cgroup.isFrozen() ? 'suspended' : 'started' };
    }
    const mounted = mountsUnder(this.mountPoints(id)).length > 0;
    if (cgroup.exists() || mounted || existsSync(join(dir, 'state.json'))) {
      return { id, state: 'broken', detail: 'leftovers of an interrupted start or stop' };
    }
    return { id, state: 'stopped' };
  }

  /** The recorded init is still the same process in the same namespaces (no PID reuse). */
  private initMatches(state: StartState): boolean {
    const pids = namespacePids(state.init);
    return (
      processStartTime(state.init) === state.startTime &&
      pids.length === 2 &&
      pids[1] === 1 &&
      namespaceId(state.init, 'user') === state.userns &&
      namespaceId(state.init, 'pid') === state.pidns &&
      namespaceId(state.init, 'net') === state.netns
    );
  }

  private writeState(id: string, init: number): void {
    const state: StartState = {
      init,
      startTime: processStartTime(init) ?? '',
      userns: namespaceId(init, 'user') ?? '',
      pidns: namespaceId(init, 'pid') ?? '',
      netns: namespaceId(init, 'net') ?? '',
    };
    writeFileSync(join(this.machineDir(id), 'state.json'), `${JSON.stringify(state)}\n`, {
      mode: 0o600,
    });
  }

  private readState(id: string): StartState | undefined {
    try {
      return JSON.parse(
        readFileSync(join(this.machineDir(id), 'state.json'), 'utf8'),
      ) as StartState;
    } catch {
      return undefined;
    }
  }

  private record(id: string): MachineRecord {
    const record = this.readRecord(id);
    if (!record) throw new RuntimeError(`machine ${id} does not exist`, 'not_found');
    return record;
  }

  private readRecord(id: string): MachineRecord | undefined {
    if (!idPattern.test(id)) throw new RuntimeError(`invalid machine id "${id}"`, 'not_found');
    try {
      return JSON.parse(
        readFileSync(join(this.machineDir(id), 'machine.json'), 'utf8'),
      ) as MachineRecord;
    } catch {
      return undefined;
    }
  }

  private freeSlot(): number {
    const used = new Set<number>();
    if (existsSync(this.machinesDir)) {
      for (const id of readdirSync(this.machinesDir)) {
        try {
          used.add(this.record(id).slot);
        } catch {
          // A half-created directory holds no slot.
        }
      }
    }
    let slot = 0;
    while (used.has(slot)) slot++;
    // 32-bit uids and a /16 of addresses bound the slot count.
    if (slot > 60_000) throw new RuntimeError('no free machine slot', 'failed');
    return slot;
  }

  private machineDir(id: string): string {
    return join(this.machinesDir, id);
  }

  private mountPoints(id: string): string {
    return join(this.mountDir, id);
  }

  /** Outside the overlay's upper dir, so not visible inside the machine. */
  private consolePath(id: string): string {
    return join(this.mountPoints(id), 'disk', 'console.log');
  }

  private socketPath(id: string): string {
    return join(this.machineDir(id), 'run', 'agent.sock');
  }

  private cgroup(id: string): MachineCgroup {
    return new MachineCgroup(this.layout, `${this.cgroupParent}/${id}`);
  }

  private async locked<T>(key: string, action: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(action, action);
    const settled = next.catch(() => {});
    this.locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}

function validateSpec(spec: MachineSpec): void {
  if (!idPattern.test(spec.id)) {
    throw new RuntimeError('id: use 1-40 lowercase letters, digits and dashes', 'invalid_argument');
  }
  if (!hostnamePattern.test(spec.name)) {
    throw new RuntimeError(
      'name: must be a DNS label (letters, digits, dashes; 1-63)',
      'invalid_argument',
    );
  }
  const { cpu, memoryMiB, diskGiB, pids } = spec.size;
  if (!(cpu > 0 && cpu <= 64))
    throw new RuntimeError('size.cpu: must be in (0, 64]', 'invalid_argument');
  if (!(Number.isInteger(memoryMiB) && memoryMiB >= 64)) {
    throw new RuntimeError('size.memoryMiB: must be an integer >= 64', 'invalid_argument');
  }
  if (!(Number.isInteger(diskGiB) && diskGiB >= 1)) {
    throw new RuntimeError('size.diskGiB: must be an integer >= 1', 'invalid_argument');
  }
  if (!(Number.isInteger(pids) && pids >= 32)) {
    throw new RuntimeError('size.pids: must be an integer >= 32', 'invalid_argument');
  }
}

/** Machines use the host's resolvers unless those are loopback-only (unreachable from inside). */
function machineResolvConf(): string {
  let servers: string[] = [];
  try {
    servers = readFileSync('/etc/resolv.conf', 'utf8')
      .split('\n')
      .filter((l) => /^nameserver\s+\d+\.\d+\.\d+\.\d+/.test(l) && !/\s127\./.test(l));
  } catch {
    // Fall through to the public default below.
  }
  return `${(servers.length ? servers : ['nameserver 1.1.1.1']).join('\n')}\n`;
}

function pingAgent(endpoint: AgentEndpoint): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        createConnection: endpoint.connect,
        path: '/v1/health',
        headers: { authorization: `Bearer ${endpoint.token}` },
        timeout: 1_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function loopDevicesFor(file: string): string[] {
  const found: string[] = [];
  for (const dev of readdirSync('/sys/block').filter((d) => d.startsWith('loop'))) {
    try {
      if (readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8').trim().startsWith(file))
        found.push(dev);
    } catch {
      // Not attached.
    }
  }
  return found;
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
