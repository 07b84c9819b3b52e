// Real servers with the lifecycle on, each test file on its own host lane (bridge, subnet,
// cgroup parent, uid range, mount dir) so they never meet other tests' machines, and a
// cleanup that destroys every machine the servers left running.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../config.js';
import { LocalDriver } from '../runtime/local/local-driver.js';
import {
  prepareLocalHost,
  setUpTestDriver,
  type TestDriverSetup,
} from '../runtime/local/test-support.js';
import { type RunningServer, startServer } from '../server.js';
import {
  ApiClient,
  prepareTestDatabase,
  type TestDatabaseHandle,
} from '../test-support/test-server.js';

export interface LifecycleHost {
  setup: TestDriverSetup;
  database: TestDatabaseHandle;
  /** The environment a server (in-process or `snapvm serve`) needs for this lane. */
  env: Record<string, string>;
  start(extra?: Record<string, string>): Promise<RunningServer>;
  /** The driver as the server sees it, for checks on the host. */
  driver(): LocalDriver;
  cleanup(): Promise<void>;
}

export async function prepareLifecycleHost(
  lane: number,
  extraEnv: Record<string, string> = {},
): Promise<LifecycleHost> {
  const { rootfs } = await prepareLocalHost();
  const setup = setUpTestDriver(rootfs, lane);
  const database = await prepareTestDatabase();
  const { options } = setup;
  const network = options.network as NonNullable<typeof options.network>;
  const env: Record<string, string> = {
    ...database.env,
    SNAPVM_LISTEN: '127.0.0.1:0',
    SNAPVM_LOG_LEVEL: process.env.SNAPVM_TEST_LOG_LEVEL || 'silent',
    SNAPVM_LIFECYCLE: 'on',
    SNAPVM_IMAGE_CACHE: process.env.SNAPVM_IMAGE_CACHE || '/var/cache/snapvm-images',
    SNAPVM_AGENT_DIR: options.agentDir,
    SNAPVM_AGENT_TIMEOUT_MS: '10000',
    SNAPVM_MACHINE_MOUNT_DIR: options.mountDir as string,
    SNAPVM_MACHINE_BRIDGE: network.bridge,
    SNAPVM_MACHINE_VETH_PREFIX: network.vethPrefix,
    SNAPVM_MACHINE_SUBNET: network.subnet,
    SNAPVM_MACHINE_UID_BASE: String(options.uidBase),
    SNAPVM_CGROUP_PARENT: options.cgroupParent as string,
    SNAPVM_RECONCILE_INTERVAL_MS: '1000',
    SNAPVM_IDLE_POLL_MS: '200',
    SNAPVM_IDLE_SUSPEND_SECONDS: '0',
    SNAPVM_IDLE_STOP_SECONDS: '0',
    ...extraEnv,
  };
  const servers: RunningServer[] = [];
  const driver = () =>
    new LocalDriver({ ...options, dataDir: env.SNAPVM_DATA_DIR as string, agentTimeoutMs: 10_000 });
  return {
    setup,
    database,
    env,
    driver,
    async start(extra = {}) {
      const server = await startServer(loadConfig({ ...env, ...extra }));
      servers.push(server);
      return server;
    },
    async cleanup() {
      for (const server of servers) await server.stop().catch(() => {});
      const host = driver();
      for (const machine of await host.list()) await host.destroy(machine.id).catch(() => {});
      await host.close();
      await database.cleanup();
      await setup.cleanup();
    },
  };
}

/** Signs up a user who owns org `slug`; returns their client. */
export async function signUpOwner(base: string, slug = 'acme'): Promise<ApiClient> {
  const email = `owner-${randomBytes(4).toString('hex')}@example.com`;
  const res = await new ApiClient(base).post('/api/v1/auth/signup', {
    email,
    password: 'correct horse battery',
    name: 'Owner',
  });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  const cookie = /snapvm_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? '';
  const client = new ApiClient(base, { session: cookie });
  const org = await client.post('/api/v1/orgs', { slug, name: 'Acme' });
  if (org.status !== 201) throw new Error(`org failed: ${org.status} ${org.text}`);
  return client;
}

/** Polls GET machine until `predicate` holds; fails with the machine's timeline if not. */
export async function waitForMachine(
  client: ApiClient,
  path: string,
  predicate: (machine: { state: string; desiredState: string }) => boolean,
  timeoutMs = 20_000,
): Promise<{ state: string; desiredState: string; [key: string]: unknown }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.get(path);
    if (res.status === 200 && predicate(res.body)) return res.body;
    if (Date.now() > deadline) {
      const events = await client.get(`${path}/events`);
      throw new Error(
        `machine never got there; last ${res.status} ${res.text}\nevents: ${timeline(events.body)}`,
      );
    }
    await sleep(25);
  }
}

/** "desired started→stopped (api) · observed started→stopping (api) · ..." */
export function timeline(events: {
  items?: { kind: string; from: string | null; to: string; reason: string }[];
}): string {
  return (events.items ?? [])
    .map((e) => `${e.kind} ${e.from ?? '∅'}→${e.to} (${e.reason})`)
    .join(' · ');
}
