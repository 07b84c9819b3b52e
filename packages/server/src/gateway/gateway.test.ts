// The gateway driven as a browser and a user would, through the server's port only: real
// server, real machines on the local driver, real agent, real apps inside the machine.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { AgentClient } from '../agent-client/agent-client.js';
import {
  type LifecycleHost,
  prepareLifecycleHost,
  signUpOwner,
  waitForMachine,
} from '../lifecycle/reconciler-test-support.js';
import type { RunningServer } from '../server.js';
import { ApiClient } from '../test-support/test-server.js';
import { webSocketEcho } from './test-apps.js';
import { TUNNEL_IDLE_MS } from './tunnel-pool.js';

const M = '/api/v1/orgs/acme/machines';

// An app that answers with the headers it received, and echoes WebSocket text frames.
const ECHO_APP = `
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
const answer = (req, res) => {
  res.setHeader('content-type', 'application/json');
  res.setHeader('set-cookie', ['snapvm_session=planted; Path=/', 'theirs=set; Path=/']);
  const body = JSON.stringify({ url: req.url, remote: req.socket.remoteAddress, headers: req.headers });
  if (req.url === '/slow') setTimeout(() => res.end(body), 1500);
  else res.end(body);
};
const server = createServer(answer);
// The same app on loopback alone, which only the agent's tunnel reaches.
createServer(answer).listen(8082, '127.0.0.1');
${webSocketEcho('server')}
server.listen(8081);
`;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('the gateway', () => {
  let host: LifecycleHost;
  let server: RunningServer;
  let owner: ApiClient;
  let ownerToken: string;
  let member: ApiClient;
  let memberToken: string;
  let port: number;
  const appHost = () => `web--acme.localhost:${port}`;

  /** A request to the machine URL: the Host header picks the machine. */
  const app = (
    path: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ): Promise<RawResponse> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method, headers: { host: appHost(), ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });

  const exec = async (script: string, stdin?: string) => {
    const res = await owner.post(`${M}/web/exec`, {
      command: ['sh', '-c', script],
      ...(stdin === undefined ? {} : { stdin }),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exitCode, 0, res.text);
    return res.body.stdout as string;
  };

  const attach = (path: string, client: ApiClient) =>
    new WebSocket(`ws://127.0.0.1:${port}${path}`, {
      headers: { cookie: `snapvm_session=${client.credentials.session}` },
    });

  /** Every frame an attach gets as text, and its close code. */
  const attachUntilClosed = (path: string) => {
    const socket = attach(path, owner);
    const frames: string[] = [];
    return new Promise<{ frames: string[]; closed: number }>((resolve) => {
      socket.on('message', (data) => frames.push(data.toString()));
      socket.on('close', (closed) => resolve({ frames, closed }));
    });
  };

  /** Collects a terminal socket's frames; `until` resolves when the output matches. */
  const terminal = (socket: WebSocket) => {
    const state = {
      attached: null as null | { mode: string; offset: number; snapshotBytes: number },
      snapshotLeft: 0,
      stream: '',
      offset: 0,
      texts: [] as string[],
    };
    socket.on('message', (data: Buffer, binary: boolean) => {
      if (!binary) {
        const message = JSON.parse(data.toString());
        state.texts.push(message.type);
        if (message.type === 'attached') {
          state.attached = message;
          state.snapshotLeft = message.snapshotBytes;
          state.offset = message.offset;
        }
        return;
      }
      const skipped = Math.min(state.snapshotLeft, data.length);
      state.snapshotLeft -= skipped;
      const streamed = data.subarray(skipped);
      state.stream += streamed.toString('latin1');
      state.offset += streamed.length;
    });
    const until = async (pattern: RegExp, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(state.stream)) {
        if (Date.now() > deadline)
          throw new Error(`no ${pattern} in terminal output: ${JSON.stringify(state.stream)}`);
        await sleep(20);
      }
    };
    const attached = async () => {
      const deadline = Date.now() + 20_000;
      while (!state.attached) {
        if (Date.now() > deadline) throw new Error(`never attached: ${state.texts.join(',')}`);
        await sleep(10);
      }
      return state.attached;
    };
    return { state, until, attached };
  };

  before(async () => {
    host = await prepareLifecycleHost(31, {
      SNAPVM_APPS_DOMAIN: 'localhost',
      SNAPVM_TERMINAL_HEARTBEAT_MS: '1000',
      // Page loads of a stopped machine always see the wake page (suspended ones never do).
      SNAPVM_GATEWAY_PAGE_HOLD_MS: '0',
    });
    server = await host.start();
    port = Number(new URL(server.url).port);
    owner = await signUpOwner(server.url, 'acme');
    ownerToken = (await owner.post('/api/v1/me/tokens', { name: 'cli' })).body.token;
    const invitation = await owner.post('/api/v1/orgs/acme/invitations', {
      email: 'member@example.com',
      role: 'member',
    });
    const signup = await new ApiClient(server.url).post('/api/v1/auth/signup', {
      email: 'member@example.com',
      password: 'correct horse battery',
      name: 'Member',
    });
    const cookie = /snapvm_session=([^;]+)/.exec(signup.headers.get('set-cookie') ?? '')?.[1];
    member = new ApiClient(server.url, { session: cookie ?? '' });
    const accepted = await member.post(`/api/v1/invitations/${invitation.body.token}/accept`);
    assert.ok(accepted.status < 300, accepted.text);
    memberToken = (await member.post('/api/v1/me/tokens', { name: 'cli' })).body.token;
    assert.equal((await owner.post(M, { name: 'web' })).status, 201);
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'started');
  });
  after(() => host?.cleanup());

  test('a terminal: echo, reconnect with the offset sees each output once, a second client shares it', async () => {
    const created = await owner.post(`${M}/web/sessions`, { cols: 100, rows: 30 });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    const path = `${M}/web/sessions/${id}/attach`;

    const first = attach(`${path}?offset=0`, owner);
    const one = terminal(first);
    assert.equal((await one.attached()).mode, 'resume');
    first.send(Buffer.from('echo one$((40+2))x\r'));
    await one.until(/one42x/);
    const resumeAt = one.state.offset;
    first.close();

    const second = attach(path, owner);
    const two = terminal(second);
    assert.equal((await two.attached()).mode, 'snapshot');
    second.send(Buffer.from('echo two$((40+2))x\r'));
    await two.until(/two42x/);

    const again = attach(`${path}?offset=${resumeAt}`, owner);
    const three = terminal(again);
    const resumed = await three.attached();
    assert.equal(resumed.mode, 'resume');
    assert.equal(resumed.offset, resumeAt);
    await three.until(/two42x/);
    await sleep(300);
    assert.equal(three.state.stream.match(/two42x/g)?.length, 1, three.state.stream);
    assert.doesNotMatch(three.state.stream, /one42x/);
    second.close();
    again.close();

    const listed = await owner.get(`${M}/web/sessions`);
    assert.equal(listed.status, 200);
    assert.ok(listed.body.items.some((s: { id: string }) => s.id === id));
    assert.equal((await owner.delete(`${M}/web/sessions/${id}`)).status, 204);
  });

  test("another member can neither list nor attach to the owner's terminals", async () => {
    assert.equal((await member.get(`${M}/web/sessions`)).status, 404);
    const socket = attach(`${M}/web/sessions/whatever/attach`, member);
    const status = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => resolve(101));
    });
    assert.equal(status, 404);
    const anonymous = new WebSocket(`ws://127.0.0.1:${port}${M}/web/sessions/x/attach`);
    const anonymousStatus = await new Promise<number>((resolve) => {
      anonymous.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      anonymous.on('open', () => resolve(101));
    });
    assert.equal(anonymousStatus, 401);
  });

  test('a service serves files through the machine URL to whom its access level allows', async () => {
    await exec('mkdir -p /root/site && echo hello-from-web > /root/site/hello.txt');
    const put = await owner.request('PUT', `${M}/web/services/web`, {
      command: 'python3',
      args: ['-m', 'http.server', '8080'],
      cwd: '/root/site',
      httpPort: 8080,
    });
    assert.equal(put.status, 201, put.text);

    // Bearer token (a non-browser client): the held request waits for the service.
    const byToken = await app('/hello.txt', { authorization: `Bearer ${ownerToken}` });
    assert.equal(byToken.status, 200, byToken.body);
    assert.equal(byToken.body, 'hello-from-web\n');

    // A browser: sent to the main origin, back with a ticket, then its own cookie.
    const first = await app('/hello.txt', { accept: 'text/html' });
    assert.equal(first.status, 302);
    const login = new URL(first.headers.location as string);
    assert.equal(login.pathname, '/api/v1/app-auth');
    const anonymousLogin = await new ApiClient(server.url).get(login.pathname + login.search);
    assert.equal(anonymousLogin.status, 200, 'fetch follows to the console sign-in page');
    const handedBack = await fetch(server.url + login.pathname + login.search, {
      headers: { cookie: `snapvm_session=${owner.credentials.session}` },
      redirect: 'manual',
    });
    assert.equal(handedBack.status, 302);
    const back = new URL(handedBack.headers.get('location') as string);
    assert.equal(back.host, appHost());
    assert.equal(back.pathname, '/__snapvm/auth');
    const redeemed = await app(back.pathname + back.search);
    assert.equal(redeemed.status, 302);
    assert.equal(redeemed.headers.location, '/hello.txt');
    const setCookie = String(redeemed.headers['set-cookie']);
    assert.match(setCookie, /^snapvm_app_[0-9a-f]{16}=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);
    assert.equal((await app(back.pathname + back.search)).status, 400, 'tickets are single-use');
    const appCookie = setCookie.split(';')[0] as string;
    const byCookie = await app('/hello.txt', { accept: 'text/html', cookie: appCookie });
    assert.equal(byCookie.status, 200);
    assert.equal(byCookie.body, 'hello-from-web\n');

    // Another member: denied while private, allowed at `org`.
    const memberAuth = { authorization: `Bearer ${memberToken}` };
    const denied = await app('/hello.txt', memberAuth);
    assert.equal(denied.status, 403);
    assert.equal(JSON.parse(denied.body).error.code, 'forbidden');
    assert.equal((await owner.patch(`${M}/web`, { urlAccess: 'org' })).status, 200);
    assert.equal((await app('/hello.txt', memberAuth)).status, 200);

    // Nobody signed in: 401 JSON (no redirect for non-browsers), then allowed at `public`.
    const anonymous = await app('/hello.txt');
    assert.equal(anonymous.status, 401);
    assert.equal(JSON.parse(anonymous.body).error.code, 'unauthorized');
    assert.equal((await owner.patch(`${M}/web`, { urlAccess: 'public' })).status, 200);
    assert.equal((await app('/hello.txt')).body, 'hello-from-web\n');
    assert.equal((await owner.patch(`${M}/web`, { urlAccess: 'private' })).status, 200);
    assert.equal((await app('/hello.txt')).status, 401);

    const machine = await owner.get(`${M}/web`);
    assert.match(machine.body.urls.app, /^http:\/\/web--acme\.localhost:\d+\/$/);
  });

  test("SnapVM's cookies and tokens never reach the app; X-Forwarded-* and WebSockets do", async () => {
    await exec('cat > /root/echo.mjs', ECHO_APP);
    const put = await owner.request('PUT', `${M}/web/services/echo`, {
      command: '/usr/local/bin/node',
      args: ['/root/echo.mjs'],
      readiness: { type: 'tcp', port: 8081 },
    });
    assert.equal(put.status, 201, put.text);
    for (let i = 0; ; i++) {
      const echo = await owner.get(`${M}/web/services/echo`);
      if (echo.body.status === 'ready') break;
      assert.ok(i < 100, `echo never got ready: ${echo.text}`);
      await sleep(50);
    }
    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8081 })).status, 200);
    const echoed = await app('/headers?x=1', {
      authorization: `Bearer ${ownerToken}`,
      cookie: `snapvm_session=${owner.credentials.session}; theirs=kept; snapvm_app_0123456789abcdef=x`,
      'x-forwarded-for': '6.6.6.6',
      'x-snapvm-agent-token': 'guess',
    });
    assert.equal(echoed.status, 200, echoed.body);
    assert.deepEqual(
      echoed.headers['set-cookie'],
      ['theirs=set; Path=/'],
      'no SnapVM cookie set by the app',
    );
    const seen = JSON.parse(echoed.body) as {
      url: string;
      remote: string;
      headers: Record<string, string>;
    };
    assert.equal(seen.url, '/headers?x=1');
    assert.equal(seen.headers.cookie, 'theirs=kept');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-snapvm-agent-token'], undefined);
    assert.equal(seen.headers['x-forwarded-host'], appHost());
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    // Not behind a trusted proxy (SNAPVM_TRUST_PROXY): a client's own claim is dropped.
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.doesNotMatch(JSON.stringify(seen), new RegExp(ownerToken));
    // Headers the client's Connection header names are hop-by-hop: they stop at the gateway.
    const hop = await app('/headers', {
      authorization: `Bearer ${ownerToken}`,
      connection: 'keep-alive, x-hop',
      'x-hop': 'private to this hop',
    });
    assert.equal(JSON.parse(hop.body).headers['x-hop'], undefined);

    // An app listening on every address is reached at the machine's address, with no agent
    // relaying (it sees the bridge, not loopback); one on loopback alone through the agent's
    // tunnel, which the agent counts as a proxied connection until it closes, soon after.
    assert.notEqual(seen.remote, '127.0.0.1');
    const auth = { authorization: `Bearer ${ownerToken}` };
    const { id } = (await owner.get(`${M}/web`)).body as { id: string };
    const agent = new AgentClient(await host.driver().agentEndpoint(id));
    assert.equal((await agent.activity()).proxy.openConnections, 0, 'no tunnel for a direct app');
    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8082 })).status, 200);
    const looped = await app('/headers', auth);
    assert.equal(looped.status, 200, looped.body);
    assert.equal(JSON.parse(looped.body).remote, '127.0.0.1');
    assert.ok((await agent.activity()).proxy.openConnections >= 1, 'a tunnel stays open');
    await sleep(TUNNEL_IDLE_MS + 500);
    assert.equal((await agent.activity()).proxy.openConnections, 0);

    // A request the app takes its time over keeps the machine busy, though no agent sees it.
    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8081 })).status, 200);
    const urlBusy = (machine: { activity: { reasons: string[] } }) =>
      machine.activity.reasons.some((r) => r.includes('machine URL'));
    const slow = app('/slow', auth);
    for (let i = 0; !urlBusy((await owner.get(`${M}/web`)).body); i++) {
      assert.ok(i < 100, 'the request in flight never showed as activity');
      await sleep(10);
    }
    assert.equal((await slow).status, 200);
    const after = (await owner.get(`${M}/web`)).body;
    assert.ok(!urlBusy(after), JSON.stringify(after.activity));

    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { host: appHost(), authorization: `Bearer ${ownerToken}` },
    });
    const reply = await new Promise<string>((resolve, reject) => {
      socket.on('open', () => socket.send('ping through the gateway'));
      socket.on('message', (data) => resolve(data.toString()));
      socket.on('error', reject);
    });
    assert.equal(reply, 'echo: ping through the gateway');
    socket.terminate();

    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8099 })).status, 200);
    const nothing = await app('/', {
      accept: 'text/html',
      authorization: `Bearer ${ownerToken}`,
    });
    assert.equal(nothing.status, 502);
    assert.equal(
      (await app('/__snapvm/other', { authorization: `Bearer ${ownerToken}` })).status,
      404,
    );
    assert.match(nothing.body, /nothing is listening on port 8099/);
    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8080 })).status, 200);
  });

  test('a stopped machine wakes for its URL and its services run again; a suspended one answers at once', async () => {
    const auth = { authorization: `Bearer ${ownerToken}` };
    assert.equal((await owner.post(`${M}/web/stop`)).status, 202);
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'stopped');
    // Changed while the machine is stopped: the agent learns it on the wake.
    const late = await owner.request('PUT', `${M}/web/services/late`, {
      command: 'sleep',
      args: ['1001'],
    });
    assert.equal(late.status, 201, late.text);
    assert.equal(late.body.status, 'stopped');
    assert.equal((await owner.delete(`${M}/web/services/echo`)).status, 204);
    const page = await app('/', { ...auth, accept: 'text/html' });
    assert.equal(page.status, 200);
    assert.match(page.body, /Waking <code>web<\/code>/);
    assert.equal(page.headers['cache-control'], 'no-store');
    // The page polls the status until the machine is up, then reloads.
    for (let i = 0; ; i++) {
      const status = await app('/__snapvm/status', auth);
      if (JSON.parse(status.body).state === 'started') break;
      assert.ok(i < 100, status.body);
      await sleep(100);
    }
    const listing = await app('/', { ...auth, accept: 'text/html' });
    assert.equal(listing.status, 200, listing.body);
    assert.match(listing.body, /hello\.txt/);
    const services = await owner.get(`${M}/web/services`);
    const web = services.body.items.find((s: { name: string }) => s.name === 'web');
    assert.ok(['running', 'ready'].includes(web.status), JSON.stringify(web));
    assert.ok(web.pid > 0);
    for (let i = 0; ; i++) {
      const listed = (await owner.get(`${M}/web/services`)).body.items;
      const running = listed.find((s: { name: string }) => s.name === 'late')?.status;
      if (running === 'running') break;
      assert.ok(i < 100, JSON.stringify(listed));
      await sleep(50);
    }
    // The deleted service is gone from the machine too, not only from the list.
    assert.equal(await exec('grep -ls "ech[o].mjs" /proc/[0-9]*/cmdline || true'), '');

    assert.equal((await owner.post(`${M}/web/suspend`)).status, 202);
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'suspended');
    const warm = await app('/hello.txt', { ...auth, accept: 'text/html' });
    assert.equal(warm.status, 200);
    assert.equal(warm.body, 'hello-from-web\n');
  });

  test('a terminal client that stops answering pings is dropped', async () => {
    const created = await owner.post(`${M}/web/sessions`, {});
    assert.equal(created.status, 201, created.text);
    const socket = new WebSocket(
      `ws://127.0.0.1:${port}${M}/web/sessions/${created.body.id}/attach`,
      { headers: { cookie: `snapvm_session=${owner.credentials.session}` }, autoPong: false },
    );
    const started = Date.now();
    const code = await new Promise<number>((resolve) => socket.on('close', resolve));
    // Heartbeat 1 s: one ping unanswered, dropped at the next.
    assert.equal(code, 1006);
    assert.ok(Date.now() - started < 5_000);
    assert.equal((await owner.delete(`${M}/web/sessions/${created.body.id}`)).status, 204);
  });

  test('an attach to a stopped machine says it is waking, then attaches', async () => {
    assert.equal((await owner.post(`${M}/web/stop`)).status, 202);
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'stopped');
    const { frames, closed } = await attachUntilClosed(`${M}/web/sessions/nosuch/attach`);
    assert.equal(JSON.parse(frames[0] as string).type, 'waking');
    assert.equal(closed, 4004, 'the machine woke and the agent said the session is unknown');
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'started');
  });

  test('service definitions and the machine URL survive a server restart; a wake longer than the hold is a 503', async () => {
    await server.stop();
    // A hold shorter than a boot (~250 ms), longer than reaching a running machine.
    server = await host.start({ SNAPVM_GATEWAY_HOLD_MS: '100' });
    port = Number(new URL(server.url).port);
    owner = new ApiClient(server.url, owner.credentials);
    const services = await owner.get(`${M}/web/services`);
    assert.deepEqual(
      services.body.items.map((s: { name: string }) => s.name),
      ['late', 'web'],
    );
    const auth = { authorization: `Bearer ${ownerToken}` };
    const served = await app('/hello.txt', auth);
    assert.equal(served.status, 200, served.body);
    assert.equal(served.body, 'hello-from-web\n');

    assert.equal((await owner.post(`${M}/web/stop`)).status, 202);
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'stopped');
    const held = await app('/hello.txt', auth);
    assert.equal(held.status, 503, held.body);
    assert.equal(held.headers['retry-after'], '2');
    assert.equal(JSON.parse(held.body).error.code, 'machine_unavailable');
    // The wake went on without the request that started it.
    await waitForMachine(owner, `${M}/web`, (m) => m.state === 'started');
    assert.equal((await app('/hello.txt', auth)).body, 'hello-from-web\n');
  });
  test('an attach to a machine that cannot wake says why, then closes with 1013', async () => {
    // An agent that exits at once: the machine's start fails, as a broken image's would.
    const brokenAgent = mkdtempSync(join(tmpdir(), 'snapvm-broken-agent-'));
    writeFileSync(join(brokenAgent, 'agent.mjs'), 'process.exit(3);\n');
    try {
      assert.equal((await owner.post(`${M}/web/stop`)).status, 202);
      await waitForMachine(owner, `${M}/web`, (m) => m.state === 'stopped');
      await server.stop();
      server = await host.start({ SNAPVM_AGENT_DIR: brokenAgent });
      port = Number(new URL(server.url).port);
      owner = new ApiClient(server.url, owner.credentials);
      const { frames, closed } = await attachUntilClosed(`${M}/web/sessions/nosuch/attach`);
      assert.equal(JSON.parse(frames[0] as string).type, 'waking');
      const error = JSON.parse(frames[1] as string);
      assert.equal(error.type, 'error');
      assert.equal(error.code, 'machine_unavailable');
      assert.match(error.message, /agent/, 'the error says what failed');
      assert.equal(closed, 1013, '"try again later", so the console retries');
    } finally {
      rmSync(brokenAgent, { recursive: true, force: true });
    }
  });
});
