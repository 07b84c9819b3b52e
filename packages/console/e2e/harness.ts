import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { type AgentTarget, type FrontProxy, startFrontProxy } from './front-proxy.js';

// Starts the real SnapVM server (and, while the server does not serve the console or attach
// terminals itself, the test front door of front-proxy.ts on one origin before it) and a real
// headless Chromium. Everything is torn down by stop().

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../../..');
const consoleRoot = resolve(here, '../..');
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

export interface Stack {
  /** The origin the browser uses: console and API. */
  url: string;
  /** Who serves the console: the server itself, or the test's front door (front-proxy.ts). */
  servedBy: 'server' | 'front-proxy';
  front: FrontProxy | null;
  agent: AgentTarget | null;
  browser: Browser;
  /** A fresh, isolated browser profile (cookies, storage) for one person. */
  newPerson: (viewport?: { width: number; height: number }) => Promise<Person>;
  stop: () => Promise<void>;
}

export interface Person {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors other than the browser's own logging of 4xx answers. */
  problems: string[];
}

/**
 * Starts the server on a temp data dir, and with `agent`, a real agent on loopback whose
 * terminal sessions the front door attaches browsers to (until the server's gateway exists).
 */
export async function startStack(options: { agent?: boolean } = {}): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'snapvm-console-e2e-'));
  mkdirSync(artifactsDir, { recursive: true });
  const serverPort = await freePort();
  const serverUrl = `http://127.0.0.1:${serverPort}`;
  const children: ChildProcess[] = [];
  let browser: Browser | null = null;
  let front: FrontProxy | null = null;
  const stop = async () => {
    await browser?.close().catch(() => undefined);
    await front?.close();
    for (const child of children.reverse()) await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    let agent: AgentTarget | null = null;
    if (options.agent) {
      agent = await startAgent(join(dataDir, 'agent'), children);
    }
    const frontPort = await freePort();
    const frontUrl = `http://127.0.0.1:${frontPort}`;
    let server = await startServer(serverPort, options.agent ? frontUrl : serverUrl, dataDir);
    children.push(server.child);
    let servedBy: Stack['servedBy'] = 'server';
    if (!options.agent) {
      const probe = await fetch(`${serverUrl}/orgs/x`).catch(() => null);
      const servesConsole =
        probe?.ok === true && (probe.headers.get('content-type') ?? '').includes('text/html');
      if (!servesConsole) {
        // Cookie-authenticated writes must come from the trusted origin: make it the front's.
        await stopChild(server.child);
        children.pop();
        server = await startServer(serverPort, frontUrl, dataDir);
        children.push(server.child);
        servedBy = 'front-proxy';
      }
    } else {
      servedBy = 'front-proxy';
    }
    let url = serverUrl;
    if (servedBy === 'front-proxy') {
      front = await startFrontProxy({
        distDir: join(consoleRoot, 'dist'),
        api: { host: '127.0.0.1', port: serverPort },
        agent: agent ?? undefined,
        port: frontPort,
      });
      url = front.url;
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
    });
    const launched = browser;
    const newPerson = async (viewport = { width: 1280, height: 800 }): Promise<Person> => {
      const context = await launched.newContext({ viewport, baseURL: url });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
      const page = await context.newPage();
      const problems: string[] = [];
      watchProblems(page, problems);
      context.on('page', (other) => watchProblems(other, problems));
      return { context, page, problems };
    };
    return { url, servedBy, front, agent, browser: launched, newPerson, stop };
  } catch (error) {
    await stop();
    throw error;
  }
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

async function startAgent(stateDir: string, children: ChildProcess[]): Promise<AgentTarget> {
  mkdirSync(stateDir, { recursive: true });
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(stateDir, 'token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const port = await freePort();
  const agent = startChild(
    process.execPath,
    [join(repoRoot, 'packages/agent/dist/main.js')],
    {
      SNAPVM_AGENT_LISTEN: `127.0.0.1:${port}`,
      SNAPVM_AGENT_TOKEN_FILE: tokenFile,
      SNAPVM_AGENT_STATE_DIR: stateDir,
    },
    repoRoot,
  );
  children.push(agent.child);
  await waitFor(
    `http://127.0.0.1:${port}/v1/health`,
    (response) => response.status !== 404,
    'snapvm agent',
    agent.child,
    agent.output,
  );
  return { host: '127.0.0.1', port, token };
}

async function startServer(port: number, publicUrl: string, dataDir: string) {
  const server = startChild(
    process.execPath,
    [join(repoRoot, 'packages/server/dist/cli.js'), 'serve'],
    {
      SNAPVM_LISTEN: `127.0.0.1:${port}`,
      SNAPVM_DATA_DIR: dataDir,
      SNAPVM_URL: publicUrl,
      SNAPVM_LOG_LEVEL: 'warn',
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
