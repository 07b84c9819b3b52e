// The machine-URL relay (app-relay.ts) driven byte by byte through the server's port only:
// a real server, a real machine, and apps inside it that show what reached them (node:http)
// or answer with exact bytes (node:net). Raw client sockets keep every request of a test on
// one connection, where the relay keeps its state.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type LifecycleHost,
  prepareLifecycleHost,
  signUpOwner,
  waitForMachine,
} from '../lifecycle/reconciler-test-support.js';
import type { RunningServer } from '../server.js';
import type { ApiClient } from '../test-support/test-server.js';
import { webSocketEcho } from './test-apps.js';

const M = '/api/v1/orgs/acme/machines';
const METRICS = 'metrics-token-for-the-relay-test';
const BIG_BYTES = 5 * 1024 * 1024;

// Three apps in one process:
// - 8081 (node:http) answers with what it received: headers, trailers, the body's length and
//   hash, and which of its connections carried the request (and the how-manieth it was on it);
//   it also echoes WebSocket text frames.
// - 8082 (node:net) answers each path with exact bytes (requests are heads only).
// - 8083 (node:http) closes its kept-alive connections after 100 ms idle.
const APPS = `
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';

let connections = 0;
const counted = (server) =>
  server.on('connection', (socket) => {
    socket.id = ++connections;
    socket.requests = 0;
  });

const echo = counted(createServer((req, res) => {
  const hash = createHash('sha256');
  const kept = [];
  let length = 0;
  req.on('data', (chunk) => {
    hash.update(chunk);
    length += chunk.length;
    if (length <= 65536) kept.push(chunk);
  });
  req.on('end', () => {
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      trailers: req.trailers,
      connection: req.socket.id,
      nth: ++req.socket.requests,
      length,
      sha256: hash.digest('hex'),
      body: length <= 65536 ? Buffer.concat(kept).toString('latin1') : null,
    });
    if (req.url === '/cookies')
      res.setHeader('set-cookie', [
        'snapvm_session=planted; Path=/',
        'theirs=set; Path=/',
        'snapvm_app_0123456789abcdef=planted; Path=/',
        'SNAPVM_SESSION=planted-too',
        'other=1',
      ]);
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
}));
${webSocketEcho('echo')}
echo.listen(8081);

const big = randomBytes(${BIG_BYTES});
const bigHash = createHash('sha256').update(big).digest('hex');
const send = async (socket, data) => {
  if (!socket.write(data)) await once(socket, 'drain');
};
const answers = {
  '/length': (id) => 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nX-Conn: ' + id +
    '\\r\\nContent-Length: 5\\r\\n\\r\\nhello',
  '/chunked': (id) => 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id + '\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n' +
    '5;ext=1\\r\\nhello\\r\\n6;name="quoted value";flag\\r\\n world\\r\\n0\\r\\nX-Sum: 42\\r\\n\\r\\n',
  '/length-and-chunked': (id) => 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id +
    '\\r\\nContent-Length: 999\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n0\\r\\n\\r\\n',
  '/no-content': (id) => 'HTTP/1.1 204 No Content\\r\\nX-Conn: ' + id + '\\r\\n\\r\\n',
  '/hop': (id) => 'HTTP/1.1 200 OK\\r\\nConnection: keep-alive, X-Private\\r\\nX-Private: secret\\r\\n' +
    'Keep-Alive: timeout=5\\r\\nX-Public: yes\\r\\nX-Conn: ' + id + '\\r\\nContent-Length: 2\\r\\n\\r\\nok',
};
const respond = async (socket, id, method, path) => {
  if (method === 'HEAD' && path === '/length') {
    // A HEAD answer announces the length a GET would have, and has no body.
    await send(socket, 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id + '\\r\\nContent-Length: 1234\\r\\n\\r\\n');
  } else if (answers[path]) {
    await send(socket, answers[path](id));
  } else if (path === '/length-close') {
    await send(socket, 'HTTP/1.1 200 OK\\r\\nConnection: close\\r\\nX-Conn: ' + id +
      '\\r\\nContent-Length: 6\\r\\n\\r\\nclosed');
    socket.end();
    return false;
  } else if (path === '/drop-next') {
    // Answers, then drops the connection when the next request arrives on it, unanswered.
    socket.dropNext = true;
    await send(socket, 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id + '\\r\\nContent-Length: 2\\r\\n\\r\\nok');
  } else if (path === '/garbage') {
    await send(socket, 'NOT HTTP AT ALL\\r\\n\\r\\n');
  } else if (path === '/split-head') {
    await send(socket, 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id + '\\r\\nX-Part');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await send(socket, ': one\\r\\nContent-Length: 5\\r\\n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await send(socket, '\\r\\nsplit');
  } else if (path === '/early-hints') {
    await send(socket, 'HTTP/1.1 103 Early Hints\\r\\nLink: </style.css>; rel=preload\\r\\n\\r\\n');
    await new Promise((resolve) => setTimeout(resolve, 30));
    await send(socket, 'HTTP/1.1 200 OK\\r\\nX-Conn: ' + id + '\\r\\nContent-Length: 5\\r\\n\\r\\nfinal');
  } else if (path === '/close-delimited') {
    // No length and no chunking: the body ends when the connection does.
    await send(socket, 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nX-Conn: ' + id + '\\r\\n\\r\\n');
    for (let i = 0; i < 10; i++) {
      await send(socket, 'part ' + i + ';'.repeat(10000) + '\\n');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    socket.end();
    return false;
  } else if (path === '/big' || path === '/big-chunked') {
    const chunked = path === '/big-chunked';
    await send(socket, 'HTTP/1.1 200 OK\\r\\nX-Sha256: ' + bigHash + '\\r\\nX-Conn: ' + id + '\\r\\n' +
      (chunked ? 'Transfer-Encoding: chunked' : 'Content-Length: ' + big.length) + '\\r\\n\\r\\n');
    for (let at = 0; at < big.length; at += 65536) {
      const slice = big.subarray(at, at + 65536);
      await send(socket, chunked
        ? Buffer.concat([Buffer.from(slice.length.toString(16) + '\\r\\n'), slice, Buffer.from('\\r\\n')])
        : slice);
    }
    if (chunked) await send(socket, '0\\r\\n\\r\\n');
  } else {
    await send(socket, 'HTTP/1.1 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n');
  }
  return true;
};
createNetServer((socket) => {
  const id = ++connections;
  let buffered = Buffer.alloc(0);
  let busy = false;
  socket.on('error', () => {});
  const pump = async () => {
    while (!busy) {
      const end = buffered.indexOf('\\r\\n\\r\\n');
      if (end < 0) return;
      const [method, path] = buffered.subarray(0, end).toString('latin1').split(' ');
      buffered = buffered.subarray(end + 4);
      if (socket.dropNext) return socket.destroy();
      busy = true;
      const open = await respond(socket, id, method, path);
      if (!open) return;
      busy = false;
    }
  };
  socket.on('data', (data) => {
    buffered = Buffer.concat([buffered, data]);
    // A client gone mid-answer fails the write: that connection ends, not the app.
    pump().catch(() => socket.destroy());
  });
}).listen(8082);

// Node 20 closes an idle kept-alive connection a second after server.keepAliveTimeout, so
// this app closes its own: 100 ms after each response unless another request came.
const brief = counted(createServer((req, res) => {
  clearTimeout(req.socket.idle);
  res.on('finish', () => {
    req.socket.idle = setTimeout(() => req.socket.destroy(), 100);
  });
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ connection: req.socket.id, nth: ++req.socket.requests }));
}));
brief.listen(8083);
`;

interface Response {
  status: number;
  headers: [string, string][];
  /** The body as it came on the wire (chunked framing included). */
  raw: Buffer;
  /** The body without its chunked framing. */
  body: Buffer;
  /** The chunked body's trailer section as sent. */
  trailers: string;
  /** 1xx responses before this one. */
  interim: { status: number; headers: [string, string][] }[];
}

const header = (res: { headers: [string, string][] }, name: string): string | undefined =>
  res.headers.find(([n]) => n.toLowerCase() === name)?.[1];
const headerAll = (res: { headers: [string, string][] }, name: string): string[] =>
  res.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

/** Every client connection a test opened: closed after the tests, failed ones' too. */
const clients = new Set<Socket>();

/** One client connection to the server, read as HTTP/1.1 responses byte by byte. */
class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port, noDelay: true });
    clients.add(this.socket);
    this.socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.length += data.length;
      this.wake?.();
    });
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Whether the server closed the connection (its FIN arrived) within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(ms).then(() => false)]);
  }

  private async until(ready: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!ready()) {
      if (this.ended) throw new Error(`closed while waiting for ${what}: ${this.preview()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}: ${this.preview()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  private preview(): string {
    return JSON.stringify(this.peek().toString('latin1').slice(0, 300));
  }

  private peek(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** The next `n` bytes, whatever they are. */
  async take(n: number): Promise<Buffer> {
    await this.until(() => this.length >= n, `${n} bytes`);
    const all = this.peek();
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length -= n;
    return all.subarray(0, n);
  }

  private async line(): Promise<string> {
    await this.until(() => this.peek().includes('\r\n'), 'a line');
    return (await this.take(this.peek().indexOf('\r\n') + 2)).toString('latin1');
  }

  /** The next head as text, up to and including its blank line. */
  async head(): Promise<string> {
    await this.until(() => this.peek().includes('\r\n\r\n'), 'a response head');
    return (await this.take(this.peek().indexOf('\r\n\r\n') + 4)).toString('latin1');
  }

  /** Everything the server sends until it closes the connection. */
  async rest(): Promise<Buffer> {
    await this.until(() => this.ended, 'the connection to close');
    return this.take(this.length);
  }

  async response(method = 'GET'): Promise<Response> {
    const interim: Response['interim'] = [];
    for (;;) {
      const text = await this.head();
      const [start = '', ...lines] = text.slice(0, -4).split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(start)?.[1]);
      assert.ok(status > 0, `not a status line: ${JSON.stringify(start)}`);
      const headers = lines.map((l): [string, string] => {
        const colon = l.indexOf(':');
        return [l.slice(0, colon), l.slice(colon + 1).trim()];
      });
      if (status < 200) {
        interim.push({ status, headers });
        continue;
      }
      const res: Response = {
        status,
        headers,
        raw: Buffer.alloc(0),
        body: Buffer.alloc(0),
        trailers: '',
        interim,
      };
      if (method === 'HEAD' || status === 204 || status === 304) return res;
      if (/chunked/i.test(header(res, 'transfer-encoding') ?? '')) {
        const raw: Buffer[] = [];
        const body: Buffer[] = [];
        for (;;) {
          const size = await this.line();
          raw.push(Buffer.from(size, 'latin1'));
          const n = Number.parseInt(size, 16);
          if (n === 0) break;
          const data = await this.take(n + 2);
          raw.push(data);
          body.push(data.subarray(0, n));
        }
        for (;;) {
          const line = await this.line();
          raw.push(Buffer.from(line, 'latin1'));
          if (line === '\r\n') break;
          res.trailers += line;
        }
        res.raw = Buffer.concat(raw);
        res.body = Buffer.concat(body);
      } else if (header(res, 'content-length') !== undefined) {
        res.raw = await this.take(Number(header(res, 'content-length')));
        res.body = res.raw;
      } else {
        res.raw = await this.rest();
        res.body = res.raw;
      }
      return res;
    }
  }

  async json(method = 'GET'): Promise<{ status: number; body: AppSaw }> {
    const res = await this.response(method);
    const text = res.body.toString('utf8');
    assert.equal(res.status, 200, text);
    return { status: res.status, body: JSON.parse(text) as AppSaw };
  }

  end(): void {
    this.socket.destroy();
  }
}

/** What the echo app (8081) saw of a request. */
interface AppSaw {
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  trailers: Record<string, string>;
  connection: number;
  nth: number;
  length: number;
  sha256: string;
  body: string | null;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('the machine-URL relay', () => {
  let host: LifecycleHost;
  let server: RunningServer;
  let owner: ApiClient;
  let token: string;
  let port: number;
  let appPort = 0;
  const appHost = () => `web--acme.localhost:${port}`;

  /** A request head for the machine URL, with SnapVM's credentials unless told otherwise. */
  const head = (
    path: string,
    options: { method?: string; headers?: string[]; credentials?: boolean } = {},
  ): string => {
    const lines = [`${options.method ?? 'GET'} ${path} HTTP/1.1`, `Host: ${appHost()}`];
    if (options.credentials !== false)
      lines.push(
        `Authorization: Bearer ${token}`,
        `Cookie: snapvm_session=${owner.credentials.session}; theirs=kept; snapvm_app_0123456789abcdef=x`,
      );
    lines.push(...(options.headers ?? []));
    return `${lines.join('\r\n')}\r\n\r\n`;
  };

  const exec = async (script: string, stdin?: string) => {
    const res = await owner.post(`${M}/web/exec`, {
      command: ['sh', '-c', script],
      ...(stdin === undefined ? {} : { stdin }),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exitCode, 0, res.text);
    return res.body.stdout as string;
  };

  /** Points the machine URL at one of the apps. */
  const useApp = async (to: number) => {
    if (appPort === to) return;
    const res = await owner.patch(`${M}/web`, { httpPort: to });
    assert.equal(res.status, 200, res.text);
    appPort = to;
  };

  /** What a relayed request to the echo app must look like when it arrives. */
  const assertForwarded = (saw: AppSaw) => {
    assert.equal(saw.headers.authorization, undefined, 'the API token stays at the gateway');
    assert.equal(saw.headers.cookie, 'theirs=kept', 'SnapVM cookies stay at the gateway');
    assert.equal(saw.headers.host, appHost());
    assert.equal(saw.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(saw.headers['x-forwarded-proto'], 'http');
    assert.equal(saw.headers['x-forwarded-host'], appHost());
    assert.doesNotMatch(JSON.stringify(saw), new RegExp(`${token}|${owner.credentials.session}`));
  };

  /** Requests relayed so far, by path (the server's metrics). */
  const relayed = async (): Promise<{ relay: number; native: number }> => {
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS}` },
    });
    const text = await res.text();
    const count = (path: string) =>
      Number(
        new RegExp(`^snapvm_gateway_relayed_requests_total\\{path="${path}"\\} (\\d+)$`, 'm').exec(
          text,
        )?.[1] ?? Number.NaN,
      );
    return { relay: count('relay'), native: count('native') };
  };

  /**
   * Makes requests until one is relayed natively: a template expires with the gateway's
   * cached decision, and the request after that is decided afresh by app-relay.ts.
   */
  const goNative = async (request: () => Promise<void>) => {
    for (let i = 0; i < 5; i++) {
      const before = (await relayed()).native;
      await request();
      if ((await relayed()).native > before) return;
    }
    assert.fail('no request went through the native relay');
  };

  before(
    async () => {
      host = await prepareLifecycleHost(36, { SNAPVM_APPS_DOMAIN: 'localhost' });
      server = await host.start({ SNAPVM_METRICS_TOKEN: METRICS });
      port = Number(new URL(server.url).port);
      owner = await signUpOwner(server.url, 'acme');
      token = (await owner.post('/api/v1/me/tokens', { name: 'cli' })).body.token;
      assert.match(token, /^snapvm_/);
      assert.equal((await owner.post(M, { name: 'web' })).status, 201);
      await waitForMachine(owner, `${M}/web`, (m) => m.state === 'started');
      await exec('cat > /root/apps.mjs', APPS);
      const put = await owner.request('PUT', `${M}/web/services/apps`, {
        command: '/usr/local/bin/node',
        args: ['/root/apps.mjs'],
        readiness: { type: 'tcp', port: 8083 },
      });
      assert.equal(put.status, 201, put.text);
      for (let i = 0; ; i++) {
        const apps = await owner.get(`${M}/web/services/apps`);
        if (apps.body.status === 'ready') break;
        assert.ok(i < 200, `the apps never got ready: ${apps.text}`);
        await sleep(50);
      }
    },
    { timeout: 90_000 },
  );
  after(
    async () => {
      for (const socket of clients) socket.destroy();
      // A connection a failed test left stuck must not hold the server's stop forever.
      server?.app.server.closeAllConnections();
      await host?.cleanup();
    },
    { timeout: 60_000 },
  );

  test('50 keep-alive requests on one connection: one upstream connection, credentials stripped on each', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    let upstream = 0;
    for (let i = 1; i <= 50; i++) {
      client.write(
        head(`/keep-alive/${i}?q=${i}`, {
          headers: [
            'X-Forwarded-For: 6.6.6.6',
            'X-Forwarded-Host: evil.example',
            'Connection: keep-alive, X-Hop',
            'X-Hop: private to this hop',
            'Connection: X-Hop-Too',
            'X-Hop-Too: named by the second Connection field',
          ],
        }),
      );
      const { body: saw } = await client.json();
      assert.equal(saw.url, `/keep-alive/${i}?q=${i}`);
      assertForwarded(saw);
      assert.equal(saw.headers['x-hop'], undefined, 'headers named by Connection are hop-by-hop');
      assert.equal(saw.headers['x-hop-too'], undefined, 'so are those a second Connection names');
      if (i === 1) upstream = saw.connection;
      // The app numbers its connections: all 50 came over one, and nothing else used it.
      assert.equal(saw.connection, upstream, `request ${i} came over another connection`);
      assert.equal(saw.nth, i);
    }
    assert.equal(await client.closesWithin(50), false, 'the connection stays open');
    client.end();
  });

  test('requests repeating an authorized one go native; others come back to the relay and return', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const before = await relayed();
    const client = new RawClient(port);
    let upstream = 0;
    for (let i = 1; i <= 20; i++) {
      client.write(head(`/native/${i}`, { headers: ['X-Custom: v', 'Connection: keep-alive'] }));
      const { body: saw } = await client.json();
      assert.equal(saw.url, `/native/${i}`);
      assertForwarded(saw);
      assert.equal(saw.headers['x-custom'], 'v');
      assert.equal(saw.headers.connection, undefined, 'Connection is hop-by-hop');
      if (i === 1) upstream = saw.connection;
      assert.equal(saw.connection, upstream, `request ${i} came over another connection`);
      assert.equal(saw.nth, i);
    }
    const during = await relayed();
    // The first request decides and goes through app-relay.ts, the others repeat it natively
    // (but for one that finds the gateway's cached decision expired, decided afresh here).
    const counts = JSON.stringify({ before, during });
    assert.equal(during.native + during.relay - before.native - before.relay, 20, counts);
    assert.ok(during.native - before.native >= 15, counts);
    // A body is app-relay.ts's: the connection comes back, and goes native again after it.
    client.write(`${head('/post', { method: 'POST', headers: ['Content-Length: 5'] })}hello`);
    const { body: posted } = await client.json();
    assert.equal(posted.method, 'POST');
    assert.equal(posted.body, 'hello');
    assertForwarded(posted);
    assert.equal(posted.connection, upstream, 'the machine connection came back with it');
    // Pipelined GETs in one write, then a HEAD.
    client.write(head('/p/1') + head('/p/2') + head('/p/3'));
    for (const n of [1, 2, 3]) assert.equal((await client.json()).body.url, `/p/${n}`);
    client.write(head('/h', { method: 'HEAD' }));
    const headed = await client.response('HEAD');
    assert.equal(headed.status, 200);
    assert.equal(headed.body.length, 0);
    client.write(head('/last'));
    const { body: last } = await client.json();
    assert.equal(last.connection, upstream);
    assert.equal(last.nth, 26);
    const after = await relayed();
    const later = JSON.stringify({ during, after });
    assert.equal(after.native + after.relay - during.native - during.relay, 6, later);
    // The POST, and the pipelined GETs behind it, which app-relay.ts reads before it lets the
    // connection go; then it is native again.
    assert.ok(after.relay - during.relay >= 1, `the POST took app-relay.ts: ${later}`);
    await goNative(async () => {
      client.write(head('/again'));
      assert.equal((await client.json()).body.connection, upstream);
    });
    client.end();
  });

  test('a settings change reaches a connection on the native relay at its next request', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    assert.equal((await owner.patch(`${M}/web`, { urlAccess: 'public' })).status, 200);
    try {
      const client = new RawClient(port);
      for (let i = 1; i <= 5; i++) {
        client.write(head(`/open/${i}`, { credentials: false }));
        assert.equal((await client.json()).body.url, `/open/${i}`);
      }
      await goNative(async () => {
        client.write(head('/open/again', { credentials: false }));
        await client.json();
      });
      // Private again: the next anonymous request on this connection is refused at once,
      // well within the time the gateway's own caches would hold.
      assert.equal((await owner.patch(`${M}/web`, { urlAccess: 'private' })).status, 200);
      client.write(head('/closed', { credentials: false }));
      const refused = await client.response();
      assert.equal(refused.status, 401, refused.body.toString());
      client.end();
    } finally {
      await owner.patch(`${M}/web`, { urlAccess: 'private' });
    }
  });

  test('request bodies: a 1 MB Content-Length body, a chunked body with a trailer, then more requests', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    // Settings saved: the gateway decides the next request afresh, which takes a while.
    assert.equal((await owner.patch(`${M}/web`, { httpPort: 8081 })).status, 200);
    const client = new RawClient(port);
    const upload = randomBytes(1024 * 1024);
    // The head alone first, then the body in pieces right behind it, as a streaming client
    // sends it: much of the body arrives while the head is still being decided.
    client.write(
      head('/upload', {
        method: 'POST',
        headers: ['Content-Type: application/octet-stream', `Content-Length: ${upload.length}`],
      }),
    );
    for (let at = 0; at < upload.length; at += 32_768) {
      await new Promise(setImmediate);
      client.write(upload.subarray(at, at + 32_768));
    }
    const uploaded = (await client.json()).body;
    assert.equal(uploaded.method, 'POST');
    assert.equal(uploaded.length, upload.length);
    assert.equal(uploaded.sha256, sha256(upload));
    assertForwarded(uploaded);

    // Head and body in one write, as small requests usually come.
    const small = Buffer.from('{"small":true}');
    client.write(
      Buffer.concat([
        Buffer.from(
          head('/small', { method: 'PUT', headers: [`Content-Length: ${small.length}`] }),
        ),
        small,
      ]),
    );
    const put = (await client.json()).body;
    assert.equal(put.method, 'PUT');
    assert.equal(put.body, '{"small":true}');
    assert.equal(put.nth, 2, 'the same upstream connection');

    // Chunked: sizes in hex, an extension, chunks split across writes, and a trailer.
    client.write(
      head('/chunked-upload', {
        method: 'POST',
        headers: ['Transfer-Encoding: chunked', 'Trailer: X-Checksum'],
      }),
    );
    const pieces = [
      '5\r\nhello\r\n',
      '1;ext=yes\r\n,\r\n',
      'a\r\n the rest ',
      '\r\n',
      '10\r\nof the chunked b\r\n',
      '4\r\nody!\r\n0\r\nX-Checksum: abc123\r\n\r\n',
    ];
    for (const piece of pieces) {
      client.write(piece);
      await sleep(5);
    }
    const chunked = (await client.json()).body;
    assert.equal(chunked.body, 'hello, the rest of the chunked body!');
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(chunked.headers['content-length'], undefined);
    assert.deepEqual(chunked.trailers, { 'x-checksum': 'abc123' });
    assertForwarded(chunked);

    client.write(head('/after-bodies'));
    const next = (await client.json()).body;
    assert.equal(next.url, '/after-bodies');
    assert.equal(next.method, 'GET');
    assert.equal(next.length, 0);
    assert.equal(next.connection, uploaded.connection);
    assert.equal(next.nth, 4);
    client.end();
  });

  test('bodies trickling in behind their heads on new connections, while the relay connects', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    // Each client connection opens its own connection to the app: pieces of the body arrive
    // while it does.
    const body = randomBytes(64 * 1024);
    const uploads = Array.from({ length: 10 }, async (_, i) => {
      const client = new RawClient(port);
      client.write(
        head(`/trickle/${i}`, { method: 'POST', headers: [`Content-Length: ${body.length}`] }),
      );
      for (let at = 0; at < body.length; at += 1024) {
        await new Promise(setImmediate);
        client.write(body.subarray(at, at + 1024));
      }
      const saw = (await client.json()).body;
      client.end();
      return saw;
    });
    for (const [i, saw] of (await Promise.all(uploads)).entries()) {
      assert.equal(saw.url, `/trickle/${i}`);
      assert.equal(saw.nth, 1, 'one request on the connection');
      assert.equal(saw.length, body.length);
      assert.equal(saw.sha256, sha256(body));
    }
  });

  test('response framings: length, chunked with extensions and trailer, HEAD, 204, 103, both length and chunked', {
    timeout: 30_000,
  }, async () => {
    await useApp(8082);
    const client = new RawClient(port);

    client.write(head('/length'));
    const length = await client.response();
    assert.equal(length.status, 200);
    assert.equal(length.body.toString(), 'hello');
    assert.equal(header(length, 'content-length'), '5');
    const upstream = header(length, 'x-conn');

    // The chunked body passes through as the app framed it: extensions and trailer included.
    client.write(head('/chunked'));
    const chunked = await client.response();
    assert.equal(chunked.status, 200);
    assert.equal(header(chunked, 'transfer-encoding'), 'chunked');
    assert.equal(
      chunked.raw.toString('latin1'),
      '5;ext=1\r\nhello\r\n6;name="quoted value";flag\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n',
    );
    assert.equal(chunked.body.toString(), 'hello world');
    assert.equal(chunked.trailers, 'X-Sum: 42\r\n');

    // HEAD: the length a GET would have, no body; the next response must not be taken for it.
    client.write(head('/length', { method: 'HEAD' }));
    const headed = await client.response('HEAD');
    assert.equal(headed.status, 200);
    assert.equal(header(headed, 'content-length'), '1234');

    client.write(head('/no-content'));
    const empty = await client.response();
    assert.equal(empty.status, 204);
    assert.equal(empty.raw.length, 0);

    client.write(head('/early-hints'));
    const hinted = await client.response();
    assert.deepEqual(
      hinted.interim.map((r) => [r.status, header(r, 'link')]),
      [[103, '</style.css>; rel=preload']],
    );
    assert.equal(hinted.status, 200);
    assert.equal(hinted.body.toString(), 'final');

    // Both: chunked wins (RFC 9112 §6.3), and the length must not reach the client.
    client.write(head('/length-and-chunked'));
    const both = await client.response();
    assert.equal(both.status, 200);
    assert.equal(header(both, 'content-length'), undefined, JSON.stringify(both.headers));
    assert.equal(header(both, 'transfer-encoding'), 'chunked');
    assert.equal(both.body.toString(), 'abc');

    client.write(head('/length'));
    const last = await client.response();
    assert.equal(last.body.toString(), 'hello');
    assert.equal(
      header(last, 'x-conn'),
      upstream,
      'all of these came over one upstream connection',
    );
    assert.equal(await client.closesWithin(50), false);
    client.end();
  });

  test('a 5 MB response arrives intact, chunked or with a length', {
    timeout: 30_000,
  }, async () => {
    await useApp(8082);
    const client = new RawClient(port);
    for (const path of ['/big', '/big-chunked']) {
      client.write(head(path));
      // A client that stops reading for a while: the relay waits for it, then goes on.
      client.socket.pause();
      await sleep(300);
      client.socket.resume();
      const big = await client.response();
      assert.equal(big.status, 200);
      assert.equal(big.body.length, BIG_BYTES, path);
      assert.equal(sha256(big.body), header(big, 'x-sha256'), path);
    }
    client.write(head('/length'));
    assert.equal((await client.response()).body.toString(), 'hello');
    client.end();
  });

  test('a close-delimited response: all of the body, then the connection closes', {
    timeout: 30_000,
  }, async () => {
    await useApp(8082);
    const client = new RawClient(port);
    client.write(head('/length'));
    assert.equal((await client.response()).body.toString(), 'hello');
    client.write(head('/close-delimited'));
    const res = await client.response();
    assert.equal(res.status, 200);
    assert.equal(header(res, 'connection'), 'close');
    assert.equal(header(res, 'content-length'), undefined);
    const expected = Array.from({ length: 10 }, (_, i) => `part ${i}${';'.repeat(10000)}\n`).join(
      '',
    );
    assert.equal(res.body.toString(), expected);
    assert.ok(await client.closesWithin(2_000));
  });

  test("the app's SnapVM cookies and hop-by-hop headers are dropped, the rest passes", {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    client.write(head('/cookies'));
    const cookies = await client.response();
    assert.equal(cookies.status, 200);
    assert.deepEqual(headerAll(cookies, 'set-cookie'), ['theirs=set; Path=/', 'other=1']);
    client.end();

    await useApp(8082);
    const raw = new RawClient(port);
    raw.write(head('/hop'));
    const hop = await raw.response();
    assert.equal(hop.status, 200);
    assert.equal(hop.body.toString(), 'ok');
    assert.equal(header(hop, 'x-public'), 'yes');
    assert.equal(header(hop, 'x-private'), undefined, 'named by the Connection header');
    assert.equal(header(hop, 'keep-alive'), undefined);
    assert.equal(header(hop, 'connection'), undefined);
    raw.write(head('/length'));
    assert.equal((await raw.response()).body.toString(), 'hello');
    raw.end();
  });

  test('the app ending its connection: after a response, as a request arrives, with garbage', {
    timeout: 30_000,
  }, async () => {
    await useApp(8082);
    const client = new RawClient(port);
    client.write(head('/length-close'));
    const closing = await client.response();
    assert.equal(closing.body.toString(), 'closed');
    assert.equal(header(closing, 'connection'), undefined, 'the client connection stays open');
    client.write(head('/drop-next'));
    const dropping = await client.response();
    assert.equal(dropping.body.toString(), 'ok');
    assert.notEqual(header(dropping, 'x-conn'), header(closing, 'x-conn'), 'a new connection');
    // The app drops this request's connection unanswered: a bodiless request is sent again.
    client.write(head('/length'));
    const retried = await client.response();
    assert.equal(retried.status, 200);
    assert.equal(retried.body.toString(), 'hello');
    assert.notEqual(header(retried, 'x-conn'), header(dropping, 'x-conn'));
    // A response head split over several reads.
    client.write(head('/split-head'));
    const split = await client.response();
    assert.equal(header(split, 'x-part'), 'one');
    assert.equal(split.body.toString(), 'split');
    assert.equal(await client.closesWithin(50), false);

    // A request with a body cannot be sent again: 502, and the connection ends.
    client.write(head('/drop-next'));
    assert.equal((await client.response()).body.toString(), 'ok');
    client.write(`${head('/length', { method: 'POST', headers: ['Content-Length: 3'] })}abc`);
    const lost = await client.response();
    assert.equal(lost.status, 502);
    assert.equal(JSON.parse(lost.body.toString()).error.code, 'upstream_closed');
    assert.ok(await client.closesWithin(2_000));

    // Not HTTP: tried twice (the request is bodiless), then 502.
    const confused = new RawClient(port);
    confused.write(head('/garbage'));
    const garbage = await confused.response();
    assert.equal(garbage.status, 502);
    assert.ok(await confused.closesWithin(2_000));
  });

  test('pipelined requests in one write are answered in order', { timeout: 30_000 }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    client.write(
      head('/first') +
        head('/second', { method: 'POST', headers: ['Content-Length: 3'] }) +
        'abc' +
        head('/third'),
    );
    const first = (await client.json()).body;
    const second = (await client.json()).body;
    const third = (await client.json()).body;
    assert.deepEqual(
      [first, second, third].map((s) => [s.method, s.url, s.body, s.nth]),
      [
        ['GET', '/first', '', 1],
        ['POST', '/second', 'abc', 2],
        ['GET', '/third', '', 3],
      ],
    );
    for (const saw of [first, second, third]) assertForwarded(saw);

    // A head split over several writes is read whole.
    const split = head('/split-request');
    for (const piece of [split.slice(0, 10), split.slice(10, 40), split.slice(40)]) {
      client.write(piece);
      await sleep(10);
    }
    const whole = (await client.json()).body;
    assert.equal(whole.url, '/split-request');
    assertForwarded(whole);

    await useApp(8082);
    const raw = new RawClient(port);
    raw.write(head('/length') + head('/chunked') + head('/length', { method: 'HEAD' }));
    assert.equal((await raw.response()).body.toString(), 'hello');
    assert.equal((await raw.response()).body.toString(), 'hello world');
    assert.equal(header(await raw.response('HEAD'), 'content-length'), '1234');
    client.end();
    raw.end();
  });

  test('a connection that starts on the main origin is handed over, and its machine-URL requests still work', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    client.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const health = await client.response();
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body.toString()), { status: 'ok' });
    client.write(head('/after-main-origin'));
    const saw = (await client.json()).body;
    assert.equal(saw.url, '/after-main-origin');
    assertForwarded(saw);
    client.end();
  });

  test('handed over mid-connection: main origin, reserved paths, sign-in answers, Expect, pipelined', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    client.write(head('/relayed'));
    const relayed = (await client.json()).body;
    assert.equal(relayed.url, '/relayed');

    // The credentials of earlier requests on the connection count for nothing.
    client.write(head('/anonymous', { credentials: false }));
    const anonymous = await client.response();
    assert.equal(anonymous.status, 401, anonymous.body.toString());
    assert.equal(JSON.parse(anonymous.body.toString()).error.code, 'unauthorized');

    // Node's HTTP server keeps the connection now; it answers as the full path does.
    client.write(head('/page', { credentials: false, headers: ['Accept: text/html'] }));
    const page = await client.response();
    assert.equal(page.status, 302);
    // (The host is the configured public URL, here the listen address as given: port 0.)
    const location = new URL(header(page, 'location') ?? '');
    assert.equal(location.pathname, '/api/v1/app-auth');
    assert.equal(location.searchParams.get('return'), `http://${appHost()}/page`);

    client.write(head('/full-path'));
    const full = (await client.json()).body;
    assert.equal(full.url, '/full-path');
    assertForwarded(full);
    client.end();

    // A reserved path after a relayed request.
    const reserved = new RawClient(port);
    reserved.write(head('/relayed'));
    assert.equal((await reserved.json()).body.url, '/relayed');
    reserved.write(head('/__snapvm/status'));
    const status = await reserved.response();
    assert.equal(status.status, 200);
    assert.deepEqual(JSON.parse(status.body.toString()), { state: 'started' });
    reserved.end();

    // A request with Expect after a relayed request: Node's server says 100 Continue.
    const expecting = new RawClient(port);
    expecting.write(head('/relayed'));
    assert.equal((await expecting.json()).body.url, '/relayed');
    expecting.write(
      head('/expect', {
        method: 'POST',
        headers: ['Content-Length: 5', 'Expect: 100-continue'],
      }),
    );
    assert.match(await expecting.head(), /^HTTP\/1\.1 100 Continue\r\n/);
    expecting.write('12345');
    const expected = (await expecting.json()).body;
    assert.equal(expected.body, '12345');
    assertForwarded(expected);
    expecting.end();

    // Nothing listening on the port any more: the full path says so.
    const refused = new RawClient(port);
    refused.write(head('/relayed'));
    assert.equal((await refused.json()).body.url, '/relayed');
    await useApp(8099);
    refused.write(head('/refused'));
    const nothing = await refused.response();
    assert.equal(nothing.status, 502, nothing.body.toString());
    assert.equal(JSON.parse(nothing.body.toString()).error.code, 'nothing_listening');
    refused.end();
    await useApp(8081);

    // The main origin after a relayed request, pipelined in one write with it.
    const mixed = new RawClient(port);
    mixed.write(
      head('/relayed-then-main') +
        `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n` +
        head('/machine-again'),
    );
    assert.equal((await mixed.json()).body.url, '/relayed-then-main');
    const health = await mixed.response();
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body.toString()), { status: 'ok' });
    assert.equal((await mixed.json()).body.url, '/machine-again');
    mixed.end();
  });

  test('a WebSocket upgrade after relayed requests on the same connection', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    for (const path of ['/before-upgrade/1', '/before-upgrade/2']) {
      client.write(head(path));
      assert.equal((await client.json()).body.url, path);
    }
    const key = randomBytes(16).toString('base64');
    client.write(
      head('/ws', {
        headers: [
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
        ],
      }),
    );
    const switched = await client.head();
    assert.match(switched, /^HTTP\/1\.1 101 /);
    const accept = createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    assert.match(
      switched,
      new RegExp(`\r\nSec-WebSocket-Accept: ${accept.replace(/\+/g, '\\+')}\r\n`, 'i'),
    );
    const text = Buffer.from('ping');
    const mask = randomBytes(4);
    client.write(
      Buffer.concat([
        Buffer.from([0x81, 0x80 | text.length]),
        mask,
        Buffer.from(text.map((b, i) => b ^ (mask[i % 4] as number))),
      ]),
    );
    const reply = Buffer.from('echo: ping');
    const frame = await client.take(2 + reply.length);
    assert.deepEqual(frame, Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
    client.end();
  });

  test('the app closing its kept-alive connection between requests: the next request still succeeds', {
    timeout: 30_000,
  }, async () => {
    await useApp(8083);
    const client = new RawClient(port);
    const seen: { connection: number; nth: number }[] = [];
    // Around the app's 100 ms keep-alive timeout, some requests go out as it closes.
    for (const pause of [0, 150, 0, 90, 95, 100, 105, 110, 120, 300, 0]) {
      await sleep(pause);
      client.write(head('/brief'));
      const res = await client.response();
      assert.equal(res.status, 200, `after ${pause} ms: ${res.body.toString()}`);
      seen.push(JSON.parse(res.body.toString()));
    }
    // After 150 and 300 ms the app had closed: the relay connected again.
    assert.notEqual(seen[1]?.connection, seen[0]?.connection);
    assert.notEqual(seen[9]?.connection, seen[8]?.connection);
    // Without a pause, the same connection.
    assert.equal(seen[2]?.connection, seen[1]?.connection);
    assert.equal(seen[2]?.nth, 2);
    assert.equal(seen[10]?.connection, seen[9]?.connection);
    assert.equal(await client.closesWithin(50), false);
    client.end();
  });

  test('Connection: close from the client: the answer, then the server closes', {
    timeout: 30_000,
  }, async () => {
    await useApp(8081);
    const client = new RawClient(port);
    client.write(head('/first'));
    assert.equal((await client.json()).body.url, '/first');
    client.write(head('/last', { headers: ['Connection: close'] }));
    const res = await client.response();
    assert.equal(res.status, 200);
    assert.equal(header(res, 'connection'), 'close');
    const saw = JSON.parse(res.body.toString()) as AppSaw;
    assert.equal(saw.url, '/last');
    assert.equal(saw.nth, 2);
    assert.ok(await client.closesWithin(2_000), 'the server closed the connection');
    assert.equal((await client.rest()).length, 0, 'nothing after the answer');

    // A request and then the client's half-close: the answer, then the server closes too.
    const halfClosed = new RawClient(port);
    halfClosed.socket.end(head('/half-closed'));
    const answer = await halfClosed.response();
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body.toString()).url, '/half-closed');
    assert.ok(await halfClosed.closesWithin(2_000));
  });

  test('connections cut at every point leave no descriptor behind, and the relay still answers', {
    timeout: 60_000,
  }, async () => {
    await useApp(8082);
    // The relay's descriptors: sockets on the server's port, and to the app. (Not all of the
    // process's: a PostgreSQL pool opens connections of its own under this load.)
    const descriptors = () => {
      const relayed = new Set<string>();
      for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6'])
        for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
          const [, local, remote, , , , , , , inode] = line.trim().split(/\s+/);
          const portOf = (address: string | undefined) =>
            Number.parseInt(address?.split(':').pop() ?? '', 16);
          if (inode && (portOf(local) === port || portOf(remote) === 8082)) relayed.add(inode);
        }
      let count = 0;
      for (const fd of readdirSync('/proc/self/fd')) {
        try {
          const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
          if (inode && relayed.has(inode)) count++;
        } catch {
          // closed meanwhile
        }
      }
      return count;
    };
    const baseline = descriptors();
    // Each client gets a connection onto the native path, then goes away at one point.
    const cuts = [
      'between requests',
      'mid-head',
      'after a request, before its answer',
      'mid-answer',
      'half-closed with an answer due',
      'reset by the client',
    ] as const;
    await Promise.all(
      Array.from({ length: 36 }, async (_, i) => {
        const cut = cuts[i % cuts.length] as (typeof cuts)[number];
        const client = new RawClient(port);
        for (let n = 0; n < 3; n++) {
          client.write(head(n % 2 ? '/chunked' : '/length'));
          assert.equal((await client.response()).status, 200);
        }
        if (cut === 'mid-head') client.write('GET /length HTTP/1.1\r\nHost: we');
        if (cut === 'after a request, before its answer') client.write(head('/split-head'));
        if (cut === 'mid-answer') {
          client.write(head('/big'));
          await client.take(100_000);
        }
        if (cut === 'half-closed with an answer due') {
          client.write(head('/split-head'));
          client.socket.end();
          assert.equal((await client.response()).body.toString(), 'split');
          await client.closed;
          return;
        }
        if (cut === 'reset by the client') client.socket.resetAndDestroy();
        else client.end();
      }),
    );
    // The relay's descriptors go with the connections: the count comes back to where it was.
    for (let i = 0; descriptors() > baseline; i++) {
      assert.ok(i < 100, `${descriptors() - baseline} descriptors more than before`);
      await sleep(50);
    }
    const client = new RawClient(port);
    for (const path of ['/length', '/chunked', '/length']) {
      client.write(head(path));
      const res = await client.response();
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), path === '/length' ? 'hello' : 'hello world');
    }
    client.end();
  });

  // Last: it stops the server.
  test('a server that stops lets a request in flight on the native relay finish', {
    timeout: 30_000,
  }, async () => {
    await useApp(8082);
    const client = new RawClient(port);
    for (let i = 0; i < 3; i++) {
      client.write(head('/length'));
      assert.equal((await client.response()).body.toString(), 'hello');
    }
    await goNative(async () => {
      client.write(head('/length'));
      await client.response();
    });
    // 5 MB: the server stops once the head is here, the request surely in flight (a request
    // still on its way when the server stops is closed with the idle, as Node's own are).
    client.write(head('/big'));
    const text = await client.head();
    const stopped = server.stop();
    const hash = /\r\nX-Sha256: ([0-9a-f]{64})\r\n/i.exec(text)?.[1];
    assert.ok(hash && /^HTTP\/1\.1 200 /.test(text), text);
    assert.equal(sha256(await client.take(BIG_BYTES)), hash, 'all of the body arrives');
    assert.equal(await client.closesWithin(5_000), true, 'then the connection ends');
    await stopped;
  });
});
