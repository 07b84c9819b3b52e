// Shared setup for tests and benchmarks of the local driver: the cached base image, the
// compiled helper, an agent to boot, and a cleanup that leaves nothing behind on the host.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBaseImage } from '../image.js';
import { mountsUnder } from './host.js';
import {
  defaultInitHelper,
  defaultMountHelper,
  defaultSeccompHelper,
  LocalDriver,
  type LocalDriverOptions,
} from './local-driver.js';
import type { NetworkConfig } from './network.js';

const serverRoot = fileURLToPath(new URL('../../../', import.meta.url));
const realAgentDir = fileURLToPath(new URL('../../../../agent/dist/bundle/', import.meta.url));

/**
 * Tests share one image build across runs and data directories (debootstrap takes ~1 min).
 * The Debian packages are installed through the repo's host-deps script.
 */
export async function prepareLocalHost(): Promise<{ rootfs: string }> {
  const deps = spawnSync(
    'bash',
    [join(serverRoot, '../../scripts/host-deps.sh'), 'debootstrap', 'nftables'],
    {
      stdio: 'inherit',
    },
  );
  if (deps.status !== 0) throw new Error('scripts/host-deps.sh debootstrap nftables failed');
  if (![defaultMountHelper, defaultSeccompHelper, defaultInitHelper].every(existsSync)) {
    const built = spawnSync('npm', ['run', 'build:native'], { cwd: serverRoot, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('npm run build:native failed');
  }
  const image = await ensureBaseImage({
    cacheDir: process.env.SNAPVM_IMAGE_CACHE || '/var/cache/snapvm-images',
    onProgress: (line) => process.stderr.write(`[image] ${line}\n`),
  });
  return { rootfs: image.rootfs };
}

/**
 * A minimal stand-in for the agent (SNAPVM_TEST_AGENT=stub): answers GET /v1/health on its
 * socket when the bearer token matches, and exits on SIGTERM. By default the real bundle from
 * packages/agent/dist/bundle boots, as in production.
 */
const stubAgent = `import { createServer } from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
const token = readFileSync(process.env.SNAPVM_AGENT_TOKEN_FILE, 'utf8').trim();
const socket = process.env.SNAPVM_AGENT_SOCKET;
rmSync(socket, { force: true });
const server = createServer((req, res) => {
  res.writeHead(req.headers.authorization === 'Bearer ' + token ? 200 : 401).end();
});
server.listen(socket);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export interface TestDriverSetup {
  options: LocalDriverOptions;
  rootfs: string;
  /** A temporary directory removed by cleanup. */
  scratch: string;
  newDriver(): LocalDriver;
  cleanup(): Promise<void>;
}

/**
 * Options isolated from a real server and from other test files: own data, mount and cgroup
 * directories, bridge, subnet and uid range (`lane` picks them, 1-50).
 */
export function setUpTestDriver(rootfs: string, lane: number): TestDriverSetup {
  const scratch = mkdtempSync(join(tmpdir(), 'snapvm-runtime-'));
  if (process.env.SNAPVM_TEST_AGENT !== 'stub' && !existsSync(join(realAgentDir, 'agent.mjs'))) {
    throw new Error(
      `the agent bundle is missing at ${realAgentDir}: run \`npm run build\` (or SNAPVM_TEST_AGENT=stub)`,
    );
  }
  const agentDir = join(scratch, 'agent');
  if (process.env.SNAPVM_TEST_AGENT === 'stub') {
    mkdirSync(agentDir);
    writeFileSync(join(agentDir, 'agent.mjs'), stubAgent);
  } else {
    // A private copy: a rebuild of the bundle while tests run must not pull it from under
    // running machines.
    cpSync(realAgentDir, agentDir, { recursive: true });
  }
  const network: NetworkConfig = {
    bridge: `snapvmt${lane}`,
    vethPrefix: `t${lane}-`,
    subnet: `10.${100 + lane}`,
  };
  const cgroupParent = `snapvm-test-${lane}`;
  const options: LocalDriverOptions = {
    dataDir: join(scratch, 'data'),
    mountDir: `/run/snapvm-test-${lane}`,
    image: async () => rootfs,
    agentDir,
    network,
    cgroupParent,
    uidBase: 10_000_000 + lane * 10 * 65_536,
    agentTimeoutMs: 10_000,
    stopGraceMs: 2_000,
  };
  const drivers: LocalDriver[] = [];
  return {
    options,
    rootfs,
    scratch,
    newDriver() {
      const driver = new LocalDriver(options);
      drivers.push(driver);
      return driver;
    },
    async cleanup() {
      const driver = drivers[0] ?? new LocalDriver(options);
      for (const machine of await driver.list()) await driver.destroy(machine.id).catch(() => {});
      await driver.close();
      // Never recurse through a mount: that would delete a machine's files or the image.
      if (mountsUnder(options.mountDir as string).length === 0) {
        rmSync(options.mountDir as string, { recursive: true, force: true });
      }
      if (mountsUnder(scratch).length === 0) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
