import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Machine, PatchMachineBody } from '@snapvm/protocol';
import {
  type APIResponse,
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
} from 'playwright-core';

// Starts the real SnapVM server (it serves the console, the API, the terminal gateway and
// machine URLs on one port) and a real headless Chromium. With `machines`, the server runs
// real machines on the local driver (root, Linux; host lane 32) and the browser reaches it
// through a plain TCP relay that can cut live terminal connections, as a network drop would.
// Everything is torn down by stop().

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../../..');
export const artifactsDir = join(repoRoot, 'test-artifacts', 'console');

export const CHROMIUM = process.env.SNAPVM_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A host lane: its own bridge, subnet, uids, cgroup and mounts (see lifecycle tests), so
 * e2e files with machines can run beside each other and beside the server's tests.
 */
const DEFAULT_LANE = 32;
function machineEnv(lane: number) {
  return {
    SNAPVM_LIFECYCLE: 'on',
    SNAPVM_IMAGE_CACHE: process.env.SNAPVM_IMAGE_CACHE || '/var/cache/snapvm-images',
    SNAPVM_MACHINE_MOUNT_DIR: `/run/snapvm-test-${lane}`,
    SNAPVM_MACHINE_BRIDGE: `snapvmt${lane}`,
    SNAPVM_MACHINE_VETH_PREFIX: `t${lane}-`,
    SNAPVM_MACHINE_SUBNET: `10.${100 + lane}`,
    SNAPVM_MACHINE_UID_BASE: String(10_000_000 + lane * 10 * 65_536),
    SNAPVM_CGROUP_PARENT: `snapvm-test-${lane}`,
    SNAPVM_RECONCILE_INTERVAL_MS: '1000',
    SNAPVM_IDLE_SUSPEND_SECONDS: '0',
    SNAPVM_IDLE_STOP_SECONDS: '0',
  };
}

/** Why machines cannot run here, or undefined when they can. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function waitFor(
  url: string,
  accept: (response: Response) => boolean,
  what: string,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${what} exited with ${child.exitCode} before it was ready:\n${output()}`);
    }
    try {
      const response = await fetch(url);
      if (accept(response)) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 150));
  }
  throw new Error(`${what} was not ready within 60 s:\n${output()}`);
}

function startChild(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  let output = '';
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A TCP relay in front of the server that can cut live terminal WebSockets. */
interface Relay {
  url: string;
  dropTerminals(): void;
  close(): Promise<void>;
}

async function startRelay(target: number): Promise<Relay> {
  const terminals = new Set<Socket>();
  const all = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    all.add(client);
    client.once('data', (first: Buffer) => {
      if (/^GET \/api\/v1\/\S+\/attach/.test(first.toString('latin1', 0, 512)))
        terminals.add(client);
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      terminals.delete(client);
      all.delete(client);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const port = await freePort();
  await new Promise<void>((resolveListen) => server.listen(port, '127.0.0.1', resolveListen));
  return {
    url: `http://127.0.0.1:${port}`,
    dropTerminals() {
      for (const socket of terminals) socket.destroy();
    },
    close: () =>
      new Promise((resolveClose) => {
        for (const socket of all) socket.destroy();
        server.close(() => resolveClose());
      }),
  };
}

export interface Stack {
  /** The origin the browser uses: console, API and (as `<m>--<org>.localhost`) machine URLs. */
  url: string;
  browser: Browser;
  /** The query string of every terminal attach a page of this stack opened, in order. */
  attaches: string[];
  /** Cuts every live terminal connection (machines only). */
  dropTerminals: () => void;
  /** A fresh, isolated browser profile (cookies, storage) for one person. */
  newPerson: (viewport?: { width: number; height: number }) => Promise<Person>;
  stop: () => Promise<void>;
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors other than the browser's own logging of 4xx answers. */
  problems: string[];
  /** Calls the API with this person's cookies; an answer other than 2xx fails with its body. */
  api: (
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    data?: unknown,
  ) => ReturnType<APIResponse['json']>;
}

/**
 * Starts the server on a temp data dir; with `machines`, machines really run (as root) on
 * `lane` (default 32). `env` adds server settings (e.g. a faster idle poll).
 */
export async function startStack(
  options: { machines?: boolean; lane?: number; env?: Record<string, string> } = {},
): Promise<Stack> {
  const lane = options.lane ?? DEFAULT_LANE;
  const dataDir = mkdtempSync(join(tmpdir(), 'snapvm-console-e2e-'));
  mkdirSync(artifactsDir, { recursive: true });
  const serverPort = await freePort();
  const children: ChildProcess[] = [];
  let browser: Browser | null = null;
  let relay: Relay | null = null;
  const stop = async () => {
    await browser?.close().catch(() => undefined);
    await relay?.close();
    for (const child of children.reverse()) await stopChild(child);
    if (options.machines) await destroyMachines(dataDir, lane);
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    let url = `http://127.0.0.1:${serverPort}`;
    if (options.machines) {
      relay = await startRelay(serverPort);
      url = relay.url;
    }
    const server = await startServer(serverPort, url, dataDir, {
      ...(options.machines ? machineEnv(lane) : {}),
      ...options.env,
    });
    children.push(server.child);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
    });
    const launched = browser;
    const attaches: string[] = [];
    const newPerson = async (viewport = { width: 1280, height: 800 }): Promise<Person> => {
      const context = await launched.newContext({ viewport, baseURL: url });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
      const page = await context.newPage();
      const problems: string[] = [];
      const watch = (each: Page) => {
        watchProblems(each, problems);
        each.on('websocket', (socket) => {
          const opened = new URL(socket.url());
          if (opened.pathname.endsWith('/attach')) attaches.push(opened.search.slice(1));
        });
      };
      watch(page);
      context.on('page', watch);
      const api = async (method: string, path: string, data?: unknown) => {
        const response = await context.request.fetch(path, {
          method,
          // Writes must come from the console's origin (CSRF check).
          headers: { origin: url },
          ...(data === undefined ? {} : { data }),
        });
        assert.ok(
          response.ok(),
          `${method} ${path}: ${response.status()} ${await response.text()}`,
        );
        return response.json();
      };
      return { context, page, problems, api };
    };
    return {
      url,
      browser: launched,
      attaches,
      dropTerminals: () => relay?.dropTerminals(),
      newPerson,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Signs `person` up through the API (not the pages) as `name`, with a fresh email. */
export async function signUp(person: Person, name: string): Promise<void> {
  await person.api('POST', '/api/v1/auth/signup', {
    email: `${name.toLowerCase()}-${Date.now()}@example.com`,
    password: `${name} password 1`,
    name,
  });
}

/** Polls until the machine is in `state`; a first start builds the image, so up to 60 s. */
async function waitForMachineState(
  person: Person,
  org: string,
  machine: string,
  state: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const current = await person.api('GET', `/api/v1/orgs/${org}/machines/${machine}`);
    if (current.state === state) return;
    assert.ok(Date.now() < deadline, `${machine} never became ${state}: ${current.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Signs `person` up as `name`, the owner of a new org. */
export async function signUpOwner(
  person: Person,
  name: string,
  org: { slug: string; name: string },
): Promise<void> {
  await signUp(person, name);
  await person.api('POST', '/api/v1/orgs', org);
}

/**
 * Creates a machine and waits until it is started; `settings` are applied right after the
 * create, before the machine can start (and idle). Returns the machine as created.
 */
export async function createStartedMachine(
  person: Person,
  org: string,
  name: string,
  settings?: PatchMachineBody,
): Promise<Machine> {
  const created = await person.api('POST', `/api/v1/orgs/${org}/machines`, { name });
  if (settings) await person.api('PATCH', `/api/v1/orgs/${org}/machines/${name}`, settings);
  await waitForMachineState(person, org, name, 'started');
  return created;
}

/** The terminal's visible rows (xterm's DOM renderer), without trailing spaces. */
export async function screenRows(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('.xterm-rows > div'), (row) =>
      (row.textContent ?? '').replace(/\u00a0/g, ' ').replace(/\s+$/, ''),
    ),
  );
}

/** The terminal's visible rows as text, one line per row. */
export async function screenText(page: Page): Promise<string> {
  return (await screenRows(page)).join('\n');
}

/** Waits up to 15 s for the terminal to show `pattern`; a failure shows the screen. */
export async function waitForScreen(page: Page, pattern: RegExp, what: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  let text = '';
  while (Date.now() < deadline) {
    text = await screenText(page);
    if (pattern.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${what}; screen:\n${text}`);
}

export async function typeInto(page: Page, text: string): Promise<void> {
  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.type(text);
}

/** Whatever machines the server left running (a failed test) go, with their host resources. */
async function destroyMachines(dataDir: string, lane: number): Promise<void> {
  const env = machineEnv(lane);
  const driverModule = pathToFileURL(
    join(repoRoot, 'packages/server/dist/runtime/local/local-driver.js'),
  ).href;
  const { LocalDriver } = (await import(driverModule)) as {
    LocalDriver: new (
      options: Record<string, unknown>,
    ) => {
      list(): Promise<{ id: string }[]>;
      destroy(id: string): Promise<void>;
      close(): Promise<void>;
    };
  };
  const driver = new LocalDriver({
    dataDir,
    mountDir: env.SNAPVM_MACHINE_MOUNT_DIR,
    image: async () => {
      throw new Error('no machine is created here');
    },
    agentDir: join(repoRoot, 'packages/agent/dist/bundle'),
    network: {
      bridge: env.SNAPVM_MACHINE_BRIDGE,
      vethPrefix: env.SNAPVM_MACHINE_VETH_PREFIX,
      subnet: env.SNAPVM_MACHINE_SUBNET,
    },
    cgroupParent: env.SNAPVM_CGROUP_PARENT,
    uidBase: Number(env.SNAPVM_MACHINE_UID_BASE),
  });
  for (const machine of await driver.list()) await driver.destroy(machine.id).catch(() => {});
  await driver.close();
  // Only when empty: never recurse through what might still be a machine's mount.
  try {
    rmdirSync(env.SNAPVM_MACHINE_MOUNT_DIR);
  } catch {}
}

function watchProblems(page: Page, problems: string[]): void {
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Chromium logs every 4xx fetch (e.g. GET /api/v1/me → 401 while signed out, or the 403 a
    // member meets) as a console error; those are answers, not faults of the page.
    if (
      /Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())
    ) {
      return;
    }
    problems.push(`console: ${message.text()}`);
  });
}

async function startServer(
  port: number,
  publicUrl: string,
  dataDir: string,
  extraEnv: Record<string, string>,
) {
  const server = startChild(
    process.execPath,
    [join(repoRoot, 'packages/server/dist/cli.js'), 'serve'],
    {
      SNAPVM_LISTEN: `127.0.0.1:${port}`,
      SNAPVM_DATA_DIR: dataDir,
      SNAPVM_URL: publicUrl,
      SNAPVM_LOG_LEVEL: 'warn',
      SNAPVM_LIFECYCLE: 'off',
      ...extraEnv,
    },
    repoRoot,
  );
  await waitFor(
    `http://127.0.0.1:${port}/readyz`,
    (response) => response.ok,
    'snapvm serve',
    server.child,
    server.output,
  );
  return server;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(artifactsDir, `${name}.png`);
  // From the top, or the sticky header is drawn wherever the page happened to be scrolled.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true });
  return path;
}
