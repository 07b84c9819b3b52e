// One driver per runtime type. A runtime that cannot run here (no root, a missing helper, a
// runtime not built yet) is not a crash: its machines fail with the reason in their events.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { machineSizes, type RuntimeType, type MachineSize as SizeName } from '@snapvm/protocol';
import type { LifecycleConfig } from '../config.js';
import type { MachineSize, MachineSpec, RuntimeDriver } from '../runtime/driver.js';
import { RuntimeError } from '../runtime/driver.js';
import { ensureBaseImage } from '../runtime/image.js';
import { hostToolEnv } from '../runtime/local/host.js';
import { LocalDriver } from '../runtime/local/local-driver.js';

export interface LifecycleLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Runtimes {
  driverFor(runtime: RuntimeType): RuntimeDriver | undefined;
  /** Why `runtime` has no driver on this server. */
  unavailableReason(runtime: RuntimeType): string;
  close(): Promise<void>;
}

export function machineSpec(machine: { id: string; name: string; size: SizeName }): MachineSpec {
  const size: MachineSize = { ...machineSizes[machine.size] };
  return { id: machine.id, name: machine.name, size };
}

/** What `scripts/host-deps.sh debootstrap nftables` would install, checked without root. */
function assertHostTools(): void {
  // Looked up in node rather than with `sh -c 'command -v nft'`: this runs before every start,
  // and a synchronous spawn blocks the event loop for several milliseconds on a slow host.
  if (!hostToolDirs.some((dir) => isExecutableFile(join(dir, 'nft'))))
    throw new RuntimeError(
      'nftables is not installed, so machines cannot get their network filter: run `apt-get install -y nftables` (or scripts/host-deps.sh nftables) as root',
      'unsupported_host',
    );
}

const hostToolDirs = hostToolEnv.PATH.split(':');

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function createRuntimes(
  config: LifecycleConfig,
  dataDir: string,
  log: LifecycleLog,
): Runtimes {
  const drivers = new Map<RuntimeType, RuntimeDriver>();
  const reasons = new Map<RuntimeType, string>([
    ['sprites', 'the sprites runtime is not available on this server yet'],
    ['external', 'the external runtime is not available on this server yet'],
  ]);
  try {
    if (!existsSync(join(config.agentDir, 'agent.mjs')))
      throw new Error(
        `the agent bundle is missing at ${config.agentDir}: run \`npm run build\` or set SNAPVM_AGENT_DIR`,
      );
    drivers.set(
      'local',
      new LocalDriver({
        dataDir,
        mountDir: config.mountDir,
        agentDir: config.agentDir,
        network: { bridge: config.bridge, vethPrefix: config.vethPrefix, subnet: config.subnet },
        cgroupParent: config.cgroupParent,
        uidBase: config.uidBase,
        agentTimeoutMs: config.agentTimeoutMs,
        image: async () => {
          assertHostTools();
          const image = await ensureBaseImage({
            cacheDir: config.imageCacheDir,
            onProgress: (line) => log.info({ image: line }, 'base image'),
          });
          return image.rootfs;
        },
      }),
    );
  } catch (err) {
    const reason = `the local runtime cannot run on this server: ${(err as Error).message}`;
    reasons.set('local', reason);
    log.warn({}, reason);
  }
  return {
    driverFor: (runtime) => drivers.get(runtime),
    unavailableReason: (runtime) =>
      reasons.get(runtime) ?? `the ${runtime} runtime is not available on this server`,
    async close() {
      for (const driver of drivers.values()) await driver.close();
    },
  };
}
