// What a machine can and cannot do on this host, checked from inside real machines.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { agentHealth } from '../conformance.js';
import type { MachineSpec } from '../driver.js';
import { mountsUnder } from './host.js';
import { LocalDriver } from './local-driver.js';
import { machineAddress } from './network.js';
import { prepareLocalHost, setUpTestDriver, type TestDriverSetup } from './test-support.js';

const size = { cpu: 1, memoryMiB: 256, diskGiB: 1, pids: 96 };
const spec = (id: string, name: string): MachineSpec => ({ id, name, size });

describe('local machine isolation', () => {
  let setup: TestDriverSetup;
  let driver: LocalDriver;
  const sh = async (id: string, script: string) => driver.exec(id, ['sh', '-c', script]);
  const ok = async (id: string, script: string) => {
    const result = await sh(id, script);
    assert.equal(result.code, 0, `"${script}" failed: ${result.stderr}`);
    return result.stdout.trim();
  };

  before(async () => {
    const { rootfs } = await prepareLocalHost();
    setup = setUpTestDriver(rootfs, 2);
    driver = setup.newDriver();
    await driver.create(spec('iso-a', 'alpha'));
    await driver.create(spec('iso-b', 'beta'));
    await Promise.all([driver.start('iso-a'), driver.start('iso-b')]);
  });
  after(async () => {
    await setup?.cleanup();
  });

  it('sets the hostname to the machine name', async () => {
    assert.equal(await ok('iso-a', 'hostname'), 'alpha');
    assert.equal(await ok('iso-b', 'hostname'), 'beta');
    // sudo and friends resolve their own hostname.
    assert.match(await ok('iso-a', 'getent hosts alpha'), /^127\.0\.1\.1\s+alpha$/);
  });

  it('shows only the machine’s own processes in ps', async () => {
    const lines = (await ok('iso-a', 'ps -e -o pid=,comm=')).split('\n').map((l) => l.trim());
    assert.ok(lines.includes('1 tini'), lines.join('|'));
    // tini, the agent, and the exec's own sh and ps: nothing from the host or machine B.
    assert.ok(lines.length <= 4, `unexpected processes: ${lines.join('|')}`);
  });

  it('runs root inside as an unprivileged uid range on the host', async () => {
    assert.equal(await ok('iso-a', 'id -u'), '0');
    const map = (await ok('iso-a', 'cat /proc/self/uid_map')).split(/\s+/);
    assert.deepEqual(map, ['0', String(driver.hostUid('iso-a')), '65536']);
    assert.notEqual(driver.hostUid('iso-a'), driver.hostUid('iso-b'));
  });

  it('keeps a file written in one machine invisible to another and to the host outside its disk', async () => {
    const name = `secret-${process.pid}`;
    await ok('iso-a', `echo hidden > /root/${name}`);
    assert.equal(await ok('iso-b', `test -e /root/${name} && echo yes || echo no`), 'no');
    assert.ok(existsSync(join(driver.paths('iso-a').upper, 'root', name)));
    assert.ok(!existsSync(join(driver.paths('iso-b').upper, 'root', name)));
    // Host users other than root cannot walk into a running machine's disk or root.
    assert.equal(statSync(driver.paths('iso-a').disk).mode & 0o777, 0o700);
    assert.equal(statSync(dirname(driver.paths('iso-a').disk)).mode & 0o777, 0o700);
    // The console log is on the machine's own disk (its quota), but not visible inside.
    assert.equal(dirname(driver.paths('iso-a').console), driver.paths('iso-a').disk);
    assert.ok(existsSync(driver.paths('iso-a').console));
    assert.equal(await ok('iso-a', 'ls / | grep -c console || true'), '0');
    const { rootfs } = await prepareLocalHost();
    assert.ok(!existsSync(join(rootfs, 'root', name)), 'the shared image must not change');
    // The host's own files and other machines' directories are not reachable from inside.
    assert.equal(
      await ok('iso-a', 'test -e /work || test -e /run/snapvm-test-2 && echo yes || echo no'),
      'no',
    );
  });

  it('confines the disk to its quota', async () => {
    const fill = await sh(
      'iso-a',
      'dd if=/dev/zero of=/root/fill bs=1M count=1200 2>&1; rm -f /root/fill',
    );
    assert.match(fill.stdout, /No space left on device/);
    assert.equal(
      await ok('iso-a', 'echo still-writable > /root/after && cat /root/after'),
      'still-writable',
    );
  });

  it('OOM-kills a memory hog inside the machine and the machine survives', async () => {
    const before = driver.oomKills('iso-a');
    const hog = await sh(
      'iso-a',
      `python3 -c "
chunks = []
while True:
    chunks.append(bytearray(32 * 1024 * 1024))
"`,
    );
    assert.equal(hog.code, 137, `the hog should die of SIGKILL: ${hog.stderr}`);
    assert.ok(driver.oomKills('iso-a') > before);
    assert.equal((await driver.status('iso-a')).state, 'started');
    assert.equal(await agentHealth(await driver.agentEndpoint('iso-a')), 200);
  });

  it('caps a fork bomb at the PID limit and the machine survives', async () => {
    const bomb = await ok(
      'iso-a',
      `python3 -c "
import os, signal, time
children = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as e:
    print(len(children), e.errno)
for pid in children:
    os.kill(pid, signal.SIGKILL)
"`,
    );
    const [forked, errno] = bomb.split(' ').map(Number);
    assert.equal(errno, 11, 'fork must fail with EAGAIN');
    assert.ok((forked as number) < size.pids, `forked ${forked}`);
    assert.equal(await agentHealth(await driver.agentEndpoint('iso-a')), 200);
  });

  it('denies root inside device nodes, host filesystems, kernel modules and host sysctls', async () => {
    const script = (cmd: string) => sh('iso-a', `${cmd} 2>&1`);
    assert.notEqual((await script('mknod /tmp/blk b 8 0')).code, 0);
    assert.notEqual((await script('mknod /tmp/chr c 1 3')).code, 0);
    assert.equal(
      await ok('iso-a', 'ls /dev | grep -c -E "^(vd|sd|nvme|loop|mem|kmem)" || true'),
      '0',
    );
    assert.notEqual((await script('mount -t ext4 /dev/vda /mnt')).code, 0);
    assert.notEqual((await script('mount -t proc proc /mnt && ls /mnt/1/root/work')).code, 0);
    assert.notEqual((await script('echo 3 > /proc/sys/vm/drop_caches')).code, 0);
    // What the host binds in stays read-only, and root inside cannot lift the flags.
    assert.notEqual((await script('echo x >> /usr/local/bin/node')).code, 0);
    assert.notEqual((await script('touch /opt/snapvm/x')).code, 0);
    assert.notEqual((await script('mount -o remount,rw /opt/snapvm')).code, 0);
    assert.notEqual((await script('echo x >> /etc/hosts')).code, 0);
    assert.notEqual((await script('cp /bin/true /run/snapvm/t && /run/snapvm/t')).code, 0);
    const mountinfo = await ok('iso-a', 'cat /proc/self/mountinfo');
    for (const [point, flags] of [
      ['/usr/local/bin/node', /^ro,nosuid,nodev/],
      ['/opt/snapvm', /^ro,nosuid,nodev/],
      ['/etc/hosts', /^ro,nosuid,nodev,noexec/],
      ['/run/snapvm', /^rw,nosuid,nodev,noexec/],
    ] as const) {
      const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === point);
      assert.match(line?.split(' ')[5] ?? 'missing', flags, `${point}: ${line}`);
    }
    assert.notEqual((await script('echo 1 > /proc/sysrq-trigger')).code, 0);
    const module = await ok(
      'iso-a',
      `python3 -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open('/dev/null', os.O_RDONLY)
print(libc.syscall(313, fd, b'', 0), ctypes.get_errno())
"`,
    );
    // EPERM on a modular kernel; ENOSYS where modules are compiled out (as on this host).
    assert.match(module, /^-1 (1|38)$/);
  });

  it('filters kernel interfaces with seccomp while setuid programs keep working', async () => {
    const probe = (nr: number) =>
      ok(
        'iso-a',
        `python3 -c "
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.syscall(${nr}, 0, 0, 0, 0, 0), ctypes.get_errno())
"`,
      );
    // keyctl (keyrings are not namespaced), bpf, io_uring_setup: EPERM from the filter.
    for (const nr of [250, 321, 425]) assert.equal(await probe(nr), '-1 1', `syscall ${nr}`);
    assert.match(await ok('iso-a', 'grep Seccomp: /proc/1/status'), /Seccomp:\s+2/);
    assert.match(await ok('iso-a', 'grep Seccomp: /proc/self/status'), /Seccomp:\s+2/);
    await ok('iso-a', "useradd -m dev && echo 'dev ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dev");
    assert.equal(await ok('iso-a', "su dev -c 'id -u; sudo -n id -u'"), `1000\n0`);
  });

  it('keeps network changes made by root inside out of the host', async () => {
    const forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    await ok(
      'iso-a',
      'ip link add vx0 type veth peer name vx1 && ip addr add 10.99.99.99/32 dev lo',
    );
    await ok('iso-a', 'echo 0 > /proc/sys/net/ipv4/ip_forward');
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), forward);
    assert.ok(!existsSync('/sys/class/net/vx0'));
    const hostAddrs = spawnSync('ip', ['-br', 'addr'], { encoding: 'utf8' }).stdout;
    assert.ok(!hostAddrs.includes('10.99.99.99'));
  });

  it('stops a machine with no process left on the host', async () => {
    const base = driver.hostUid('iso-b');
    await driver.stop('iso-b');
    assert.deepEqual(processesInUidRange(base), []);
    await driver.start('iso-b');
  });

  it('does not let a symlink on the machine’s disk move the host’s binds onto host files', async () => {
    const hostFile = join(setup.scratch, 'host-file');
    writeFileSync(hostFile, 'host\n');
    // /etc/hosts is bound over at every start. Inside a running machine it is a mount point,
    // but the disk is the machine's: plant a symlink to a host file there (as a tampered disk
    // would have it) and start again. It must be resolved inside the machine's root.
    await driver.stop('iso-b');
    const disk = join(setup.scratch, 'iso-b-disk');
    mkdirSync(disk, { recursive: true });
    const onDisk = (script: string) => {
      const result = spawnSync(
        'sh',
        ['-c', script, 'sh', join(driver.paths('iso-b').dir, 'disk.img'), disk],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(result.status, 0, result.stderr);
    };
    onDisk(`mount -o loop "$1" "$2" && trap 'umount "$2"' EXIT
rm -f "$2/upper/etc/hosts" && mkdir -p "$2/upper/etc" && ln -s ${hostFile} "$2/upper/etc/hosts"`);
    await driver.start('iso-b');
    assert.deepEqual(mountsUnder(setup.scratch), [], 'a host path was mounted over');
    assert.equal(readFileSync(hostFile, 'utf8'), 'host\n');
    // Back to the image's file, which the next start binds over again.
    await driver.stop('iso-b');
    onDisk(`mount -o loop "$1" "$2" && trap 'umount "$2"' EXIT
rm "$2/upper/etc/hosts"`);
    await driver.start('iso-b');
    assert.match(await ok('iso-b', 'cat /etc/hosts'), /127\.0\.1\.1\s+beta/);
  });

  it('does not let root inside redirect the server to a host socket through the agent socket path', async () => {
    const hostSocket = join(setup.scratch, 'host-service.sock');
    let contacted = false;
    const hostService = createServer((socket) => {
      contacted = true;
      socket.destroy();
    });
    await new Promise<void>((r) => hostService.listen(hostSocket, r));
    try {
      await ok(
        'iso-a',
        `ln -sf ${hostSocket} /run/snapvm/agent.sock.new && mv -f /run/snapvm/agent.sock.new /run/snapvm/agent.sock`,
      );
      assert.equal(await agentHealth(await driver.agentEndpoint('iso-a')), 0);
      assert.equal(contacted, false, 'the server followed the machine’s symlink to a host socket');
    } finally {
      hostService.close();
    }
    // The agent's real socket was unlinked; a restart brings it back.
    await driver.stop('iso-a');
    await driver.start('iso-a');
    assert.equal(await agentHealth(await driver.agentEndpoint('iso-a')), 200);
  });

  describe('network', () => {
    const bAddress = () => machineAddress(setup.options.network as never, 1);
    const gateway = () => `${setup.options.network?.subnet}.0.1`;
    let listener: Server;
    let loopbackListener: Server;
    let port = 0;
    let loopbackPort = 0;

    before(async () => {
      listener = createServer((socket) => socket.end('host-listener\n'));
      await new Promise<void>((r) => listener.listen(0, '0.0.0.0', r));
      port = (listener.address() as { port: number }).port;
      loopbackListener = createServer((socket) => socket.end('host-loopback\n'));
      await new Promise<void>((r) => loopbackListener.listen(0, '127.0.0.1', r));
      loopbackPort = (loopbackListener.address() as { port: number }).port;
      await ok(
        'iso-b',
        'setsid python3 -m http.server 8000 --bind 0.0.0.0 </dev/null >/dev/null 2>&1 & for i in $(seq 100); do curl -s -o /dev/null localhost:8000 && break; sleep 0.05; done',
      );
    });
    after(() => {
      listener?.close();
      loopbackListener?.close();
    });

    it('lets a machine reach its own port but not another machine’s', async () => {
      assert.equal(
        await ok('iso-b', 'curl -s -o /dev/null -w "%{http_code}" localhost:8000'),
        '200',
      );
      const cross = await sh('iso-a', `curl -s --connect-timeout 1 http://${bAddress()}:8000/`);
      assert.notEqual(cross.code, 0, 'machine A reached machine B');
    });

    it('blocks host listeners on every host address, and the host database', async () => {
      const hostIps = spawnSync(
        'sh',
        ['-c', "ip -4 -o addr show | awk '{print $4}' | cut -d/ -f1"],
        {
          encoding: 'utf8',
        },
      )
        .stdout.split('\n')
        .filter((ip) => ip && !ip.startsWith('127.'));
      // The listener answers the host itself; from inside, every host address is filtered.
      assert.equal(await readGreeting('127.0.0.1', port), 'host-listener');
      assert.equal(await readGreeting('127.0.0.1', loopbackPort), 'host-loopback');
      for (const ip of hostIps) assert.equal(await readGreeting(ip, port), 'host-listener');
      // 127.0.0.1 inside is the machine's own loopback, not the host's. The only contact with
      // the host's PostgreSQL (5432) is this connect attempt.
      const targets = [...new Set([gateway(), ...hostIps])].flatMap((ip) =>
        [port, loopbackPort, 5432].map((p) => `${ip}:${p}`),
      );
      targets.push(`127.0.0.1:${port}`, `127.0.0.1:${loopbackPort}`);
      const reached = await ok(
        'iso-a',
        `for t in ${targets.join(' ')}; do
  (curl -s --connect-timeout 1 telnet://$t </dev/null >/dev/null 2>&1 && echo "reached $t") &
done
wait`,
      );
      assert.equal(reached, '', `the machine reached host services: ${reached}`);
    });

    it('reaches an outside address through NAT', async () => {
      const outside = await startOutsideHost(setup);
      try {
        const reply = await ok('iso-a', 'curl -s --max-time 3 http://198.51.100.2:8080/');
        assert.equal(reply, 'peer=198.51.100.1', 'the outside host should see the NAT address');
      } finally {
        outside.stop();
      }
    });
  });

  describe('failures', () => {
    it('rolls back a start whose agent cannot run and says why', async () => {
      const broken = new LocalDriver({
        ...setup.options,
        agentDir: join(setup.scratch, 'empty-agent'),
      });
      mkdirSync(join(setup.scratch, 'empty-agent'), { recursive: true });
      await broken.create(spec('fail-agent', 'delta'));
      const base = broken.hostUid('fail-agent');
      await assert.rejects(broken.start('fail-agent'), (err: Error) => {
        assert.match(err.message, /exited before its agent answered/);
        assert.match(err.message, /agent\.mjs/, 'the console output should name the missing file');
        return true;
      });
      assert.equal((await broken.status('fail-agent')).state, 'stopped');
      assert.deepEqual(processesInUidRange(base), []);
      await broken.destroy('fail-agent');
    });

    it('refuses a disk the host cannot hold with a clear error and leaves nothing behind', async () => {
      const huge = { ...spec('fail-disk', 'epsilon'), size: { ...size, diskGiB: 20_000 } };
      await assert.rejects(
        driver.create(huge),
        /creating the machine disk failed: .*File too large/,
      );
      assert.equal((await driver.status('fail-disk')).state, 'absent');
      assert.ok(!existsSync(join(setup.options.dataDir, 'machines', 'fail-disk')));
    });

    it('names the field of an invalid spec', async () => {
      await assert.rejects(
        driver.create({ ...spec('ok-id', 'ok'), name: 'not a hostname' }),
        /^RuntimeError: name:/,
      );
      await assert.rejects(
        driver.create({ ...spec('ok-id', 'ok'), size: { ...size, memoryMiB: 1 } }),
        /size\.memoryMiB/,
      );
      await assert.rejects(driver.create(spec('../etc', 'ok')), /^RuntimeError: id:/);
    });
  });

  describe('adoption after the controlling process is killed', () => {
    it('keeps a started machine running and adopts it in a new driver', async () => {
      const controller = spawnController(setup, 'adopt-c');
      await waitForLine(controller, 'started');
      controller.kill('SIGKILL');
      await new Promise((r) => controller.once('exit', r));
      const fresh = setup.newDriver();
      assert.equal((await fresh.status('adopt-c')).state, 'started');
      assert.equal(await ok('adopt-c', 'hostname'), 'gamma');
      const inits = (await ok('adopt-c', 'ps -e -o comm=')).split('\n').filter((c) => c === 'tini');
      await fresh.start('adopt-c');
      assert.equal(inits.length, 1);
      assert.equal(await agentHealth(await fresh.agentEndpoint('adopt-c')), 200);
    });

    it('brings a machine killed at any point of its start to a clean state and starts it once', async (t) => {
      // Delays land the kill in different phases: cgroups and uid map, mounts, namespaces, agent.
      for (const delayMs of [0, 20, 45, 80, 120]) {
        const controller = spawnController(setup, 'adopt-d');
        await waitForLine(controller, 'starting');
        await new Promise((r) => setTimeout(r, delayMs));
        controller.kill('SIGKILL');
        await new Promise((r) => controller.once('exit', r));
        const fresh = setup.newDriver();
        const observed = (await fresh.status('adopt-d')).state;
        assert.ok(['broken', 'started', 'stopped'].includes(observed), observed);
        t.diagnostic(`killed at +${delayMs} ms: found ${observed}`);
        await fresh.start('adopt-d');
        assert.equal((await fresh.status('adopt-d')).state, 'started');
        const procs = (await ok('adopt-d', 'ps -e -o comm=')).split('\n');
        assert.equal(procs.filter((c) => c === 'tini').length, 1, `after a kill at +${delayMs} ms`);
        await fresh.stop('adopt-d');
        assert.deepEqual(processesInUidRange(fresh.hostUid('adopt-d')), []);
        assert.equal((await fresh.status('adopt-d')).state, 'stopped');
      }
    });
  });
});

/** The first line a TCP server sends, read from the host side (a positive control). */
function readGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = connect(port, host);
    socket.setTimeout(2_000, () => socket.destroy(new Error(`timeout reading ${host}:${port}`)));
    socket.on('data', (d) => {
      data += d;
    });
    socket.on('end', () => resolve(data.trim()));
    socket.on('error', reject);
  });
}

function processesInUidRange(base: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]);
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (uid >= base && uid < base + 65_536 && state !== 'Z') found.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

/** A separate node process that owns a driver and is killed -9 at a chosen point. */
function spawnController(setup: TestDriverSetup, id: string): ChildProcess {
  const driverModule = fileURLToPath(new URL('./local-driver.js', import.meta.url));
  const script = `
import { LocalDriver } from ${JSON.stringify(driverModule)};
const options = JSON.parse(process.env.SNAPVM_TEST_OPTIONS);
const driver = new LocalDriver({ ...options, image: async () => options.rootfs });
await driver.create({ id: ${JSON.stringify(id)}, name: 'gamma', size: ${JSON.stringify(size)} });
console.log('starting');
await driver.start(${JSON.stringify(id)});
console.log('started');
setInterval(() => {}, 1000);
`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      SNAPVM_TEST_OPTIONS: JSON.stringify({
        ...setup.options,
        rootfs: setup.rootfs,
        image: undefined,
      }),
    },
  });
}

function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (d: Buffer) => {
      seen += d;
      if (seen.split('\n').includes(line)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`controller exited (${code}) before "${line}"`)));
  });
}

/**
 * An "outside" host in a network namespace of its own (bound to a file, so nothing appears
 * under /run/netns), reachable from the host on 198.51.100.0/24 but with no route back to the
 * machines' subnet: a reply can only arrive if the machine's traffic was masqueraded.
 */
async function startOutsideHost(setup: TestDriverSetup): Promise<{ stop(): void }> {
  const nsFile = join(setup.scratch, 'outside.ns');
  writeFileSync(nsFile, '');
  const run = (script: string) => {
    const r = spawnSync('sh', ['-c', `set -e\n${script}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  };
  run(`unshare --net=${nsFile} true
nsenter --net=${nsFile} ip link add o-in type veth peer name snapvmt-out netns 1
nsenter --net=${nsFile} sh -c 'ip link set lo up; ip addr add 198.51.100.2/24 dev o-in; ip link set o-in up'
ip addr add 198.51.100.1/24 dev snapvmt-out
ip link set snapvmt-out up`);
  const server = spawn(
    'nsenter',
    [
      `--net=${nsFile}`,
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end('peer=' + q.socket.remoteAddress)).listen(8080, '198.51.100.2', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await waitForLine(server, 'ready');
  return {
    stop() {
      server.kill('SIGKILL');
      spawnSync('sh', ['-c', `ip link del snapvmt-out 2>/dev/null; umount ${nsFile}`]);
    },
  };
}
