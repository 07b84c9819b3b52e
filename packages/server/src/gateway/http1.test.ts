// The machine-URL relay's strict HTTP/1.1 framing (http1.ts). Every request head it accepts
// must be one Node's own parser (llhttp, behind http.createServer) also accepts and frames the
// same way: same method, target, fields, and the same end of body, checked by pipelining a
// second request right where our framing says the first one ends. A fixed list of tricky
// requests and a seeded fuzz loop both go through a real server on 127.0.0.1.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mulberry32, mutateHead, pickWith } from './fuzz-support.js';
import {
  ChunkedScanner,
  headEnd,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
} from './http1.js';

/** A head from its lines, with the blank line. */
const head = (...lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;
const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const SECOND = 'GET /second HTTP/1.1\r\nHost: x\r\n\r\n';

// ------------------------------------------------------------------------------------------
// Node's parser as the oracle
// ------------------------------------------------------------------------------------------

interface NodeRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  /** Body bytes Node delivered (decoded when chunked); -1 until the body ended. */
  body: number;
}

interface NodeView {
  requests: NodeRequest[];
  /** The llhttp error code when Node refused the bytes. */
  error: string | null;
}

/** A real http.Server recording, per connection, the requests it parsed and any parse error. */
class NodeOracle {
  private server = http.createServer((req, res) => {
    const request: NodeRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: req.rawHeaders,
      contentLength: req.headers['content-length'],
      transferEncoding: req.headers['transfer-encoding'],
      body: -1,
    };
    this.views.get(req.socket.remotePort ?? 0)?.requests.push(request);
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
    });
    req.on('end', () => {
      request.body = length;
      res.end('ok');
    });
    req.on('error', () => {});
  });
  private views = new Map<number, NodeView>();
  private port = 0;

  async start(): Promise<void> {
    this.server.on('connection', (socket: net.Socket) => {
      this.views.set(socket.remotePort ?? 0, { requests: [], error: null });
    });
    this.server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
      const view = this.views.get(socket.remotePort ?? 0);
      if (view) view.error = err.code ?? err.message;
      socket.destroy();
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  /** Writes `data` on a fresh connection, half-closes it, and reports what Node made of it. */
  async send(data: Buffer): Promise<NodeView> {
    const socket = net.connect(this.port, '127.0.0.1');
    await once(socket, 'connect');
    const port = socket.localPort ?? 0;
    socket.on('error', () => {});
    socket.resume();
    const closed = once(socket, 'close');
    socket.end(data);
    await closed;
    const view = this.views.get(port);
    this.views.delete(port);
    assert.ok(view, 'the server saw the connection');
    return view;
  }

  /** `send` over many inputs, a few connections at a time. */
  async sendAll(inputs: Buffer[], parallel = 24): Promise<NodeView[]> {
    const views: NodeView[] = new Array(inputs.length);
    let next = 0;
    const worker = async () => {
      while (next < inputs.length) {
        const i = next++;
        views[i] = await this.send(inputs[i] as Buffer);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return views;
  }
}

/** The largest Content-Length body actually sent; beyond it only the head is compared. */
const MAX_SENT_BODY = 64 * 1024;
const DEFAULT_CHUNKED_BODY = '5\r\nhello\r\n0\r\n\r\n';
/** The fuzz loops' seed and size; HTTP1_FUZZ_SEED / HTTP1_FUZZ_ITERATIONS=100000 dig deeper. */
const FUZZ_SEED = Number(process.env.HTTP1_FUZZ_SEED ?? 0x5eed1);
const FUZZ_SCALE = Number(process.env.HTTP1_FUZZ_ITERATIONS ?? 4000) / 4000;

interface Probe {
  label: string;
  /** The request head as sent, blank line included. */
  head: string;
  /** What parseRequestHead made of it. */
  ours: RequestHead;
  /** The bytes sent: head, body as our framing sees it, then SECOND when it applies. */
  wire: Buffer;
  /** The body length Node should deliver; null when the body was not sent whole. */
  bodyLength: number | null;
  /** Node must see SECOND as the next request. */
  expectSecond: boolean;
}

/**
 * The bytes to send for a request head ours accepted, framed by ours: a Content-Length body of
 * that many bytes, or `chunked` (whose end ChunkedScanner finds) and its decoded length; then
 * the pipelined SECOND request. Null when the scanner refuses the chunked body (the relay would
 * drop the connection: nothing to compare).
 */
function probe(
  label: string,
  text: string,
  ours: RequestHead,
  chunked = { body: DEFAULT_CHUNKED_BODY, decoded: 5 },
): Probe | null {
  const body = ours.body;
  if (body.kind === 'length' && body.bytes > MAX_SENT_BODY)
    return { label, head: text, ours, wire: bytes(text), bodyLength: null, expectSecond: false };
  let payload = '';
  let bodyLength = 0;
  if (body.kind === 'length') {
    payload = 'b'.repeat(body.bytes);
    bodyLength = body.bytes;
  } else if (body.kind === 'chunked') {
    const scanner = new ChunkedScanner();
    const rest = bytes(chunked.body + SECOND);
    const used = scanner.push(rest);
    if (used < 0 || !scanner.done) return null;
    // Our scanner decides where the body ends; Node has to end it at the same byte.
    payload = chunked.body.slice(0, used);
    bodyLength = chunked.decoded;
    assert.equal(used, chunked.body.length, `${label}: the scanner ends the body at its end`);
  }
  return {
    label,
    head: text,
    ours,
    wire: bytes(text + payload + SECOND),
    bodyLength,
    expectSecond: !ours.close,
  };
}

/** Asserts Node accepted the request exactly as ours framed it. */
function assertAgrees(p: Probe, node: NodeView): void {
  const where = `${p.label}: ${JSON.stringify(p.head)} → node ${JSON.stringify(node)}`;
  const first = node.requests[0];
  assert.ok(first, `Node refused a head ours accepted (${node.error}). ${where}`);
  assert.equal(first.method, p.ours.method, where);
  assert.equal(first.url, p.ours.target, where);
  assert.deepEqual(first.rawHeaders, p.ours.headers, where);
  if (p.ours.body.kind === 'chunked') {
    assert.equal(first.transferEncoding?.toLowerCase(), 'chunked', where);
    assert.equal(first.contentLength, undefined, where);
  } else {
    assert.equal(first.transferEncoding, undefined, where);
    const length = p.ours.body.kind === 'length' ? p.ours.body.bytes : 0;
    assert.equal(Number(first.contentLength ?? '0'), length, where);
  }
  if (p.bodyLength === null) return;
  assert.equal(first.body, p.bodyLength, where);
  const second = node.requests[1];
  if (p.expectSecond) {
    assert.equal(node.error, null, where);
    assert.equal(second?.url, '/second', `Node read the pipelined request elsewhere. ${where}`);
    assert.equal(node.requests.length, 2, where);
  } else if (second) assert.equal(second.url, '/second', where);
}

// ------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------

/** Heads ours must accept (and Node with it). */
const VALID: Array<[string, string]> = [
  ['plain GET', head('GET / HTTP/1.1', 'Host: x')],
  ['GET with a query', head('GET /a/b?c=d&e=%20f HTTP/1.1', 'Host: web--acme.localhost:8080')],
  ['POST with a length', head('POST /api HTTP/1.1', 'Host: x', 'Content-Length: 11')],
  ['POST with length 0', head('POST /api HTTP/1.1', 'Host: x', 'Content-Length: 0')],
  ['leading zeros', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 0007')],
  ['chunked POST', head('POST /up HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked')],
  ['Chunked in capitals', head('PUT / HTTP/1.1', 'Host: x', 'transfer-encoding: CHUNKED')],
  ['chunked GET', head('GET / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked')],
  ['close', head('GET / HTTP/1.1', 'Host: x', 'Connection: close')],
  ['keep-alive', head('GET / HTTP/1.1', 'Host: x', 'Connection: keep-alive')],
  ['options', head('GET / HTTP/1.1', 'Host: x', 'Connection: X-Trace ,Keep-Alive', 'X-Trace: 1')],
  ['OWS around values', head('GET / HTTP/1.1', 'Host: \t x \t', 'X-A:  b c  ')],
  ['tab before a length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length:\t3')],
  ['spaces after a length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 3  ')],
  ['spaces after chunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked  ')],
  ['no space after colons', head('POST / HTTP/1.1', 'host:x', 'content-length:2')],
  ['empty value', head('GET / HTTP/1.1', 'Host: x', 'X-Empty:')],
  ['empty Host', head('GET / HTTP/1.1', 'Host:')],
  ['obs-text value', head('GET / HTTP/1.1', 'Host: x', 'X-Latin: caf\xe9 \x80\xff')],
  ['NBSP inside a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: a\xa0b')],
  ['odd but legal target', head('GET /a#b#c"<>\\^`{|}~!$&\'()*+,;=:@[] HTTP/1.1', 'Host: x')],
  ['DELETE', head('DELETE /r HTTP/1.1', 'Host: x')],
  ['OPTIONS', head('OPTIONS /r HTTP/1.1', 'Host: x')],
  ['PROPFIND', head('PROPFIND /dav HTTP/1.1', 'Host: x', 'Depth: 1', 'Content-Length: 4')],
  ['HEAD', head('HEAD / HTTP/1.1', 'Host: x')],
  ['Host not first', head('GET / HTTP/1.1', 'Accept: */*', 'HOST: x', 'Accept: text/html')],
  ['15-digit length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 999999999999999')],
  ['no blank line', 'GET / HTTP/1.1\r\nHost: x'],
];

/**
 * Heads ours must refuse: framing ambiguities (smuggling vectors), then the rest of what lies
 * outside the subset. Null only means Node's own parser gets the request.
 */
const REJECTED: Array<[string, string]> = [
  // Framing ambiguity (request smuggling).
  [
    'CL and TE',
    head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Transfer-Encoding: chunked'),
  ],
  [
    'TE and CL',
    head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Content-Length: 0'),
  ],
  ['two lengths', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Content-Length: 6')],
  [
    'two equal lengths',
    head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5', 'content-length: 5'),
  ],
  ['length list', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5, 5')],
  ['+length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: +5')],
  ['-length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: -5')],
  ['space in length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 1 0')],
  ['hex length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 0x10')],
  ['decimal point', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5.0')],
  ['empty length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length:')],
  ['16-digit length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 1234567890123456')],
  ['tab after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5\t')],
  ['space, tab after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5 \t')],
  ['CR after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5\r')],
  ['NBSP after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5\xa0')],
  ['VT after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5\x0b')],
  ['gzip, chunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: gzip, chunked')],
  ['chunked, identity', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked, identity')],
  ['chunked,', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked,')],
  ['xchunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: xchunked')],
  ['identity', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: identity')],
  ['"chunked"', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: "chunked"')],
  ['tab after chunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked\t')],
  ['NBSP after chunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked\xa0')],
  ['FF after chunked', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked\x0c')],
  [
    'two TE',
    head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'),
  ],
  ['obs-fold (space)', head('GET / HTTP/1.1', 'Host: x', 'X-A: b', ' c')],
  ['obs-fold (tab)', head('GET / HTTP/1.1', 'Host: x', 'X-A: b', '\tc')],
  ['folded length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length:', ' 5')],
  ['space before colon', head('GET / HTTP/1.1', 'Host : x')],
  ['tab before colon', head('POST / HTTP/1.1', 'Host: x', 'Content-Length\t: 5')],
  ['no colon', head('GET / HTTP/1.1', 'Host: x', 'X-A b')],
  ['empty name', head('GET / HTTP/1.1', 'Host: x', ': b')],
  ['name with a slash', head('GET / HTTP/1.1', 'Host: x', 'X/A: b')],
  ['name with a space', head('GET / HTTP/1.1', 'Host: x', 'X A: b')],
  ['name with obs-text', head('GET / HTTP/1.1', 'Host: x', 'X\xe9: b')],
  ['name with NUL', head('GET / HTTP/1.1', 'Host: x', 'X\x00: b')],
  ['bare LF in a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: b\nc')],
  ['bare LF ending a line', head('GET / HTTP/1.1', 'Host: x\n', 'X-A: b')],
  ['bare LF line break', 'GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n'],
  ['bare CR in a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: b\rc')],
  ['CR ending a value', head('GET / HTTP/1.1', 'Host: x\r', 'X-A: b')],
  ['CR starting a value', head('GET / HTTP/1.1', 'Host:\r x')],
  ['NUL in a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: b\x00c')],
  ['DEL in a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: b\x7f')],
  ['control char in a value', head('GET / HTTP/1.1', 'Host: x', 'X-A: \x01')],
  ['VT ending a value', head('GET / HTTP/1.1', 'Host: x\x0b')],
  ['FF starting a value', head('GET / HTTP/1.1', 'Host:\x0cx')],
  ['blank line inside', 'GET / HTTP/1.1\r\n\r\nHost: x\r\n\r\n'],
  // Host.
  ['no Host', head('GET / HTTP/1.1', 'X-A: b')],
  ['two Hosts', head('GET / HTTP/1.1', 'Host: x', 'Host: y')],
  ['two equal Hosts', head('GET / HTTP/1.1', 'Host: x', 'host: x')],
  // Request line.
  ['HTTP/1.0', head('GET / HTTP/1.0', 'Host: x')],
  ['HTTP/2', head('GET / HTTP/2', 'Host: x')],
  ['HTTP/2.0', head('GET / HTTP/2.0', 'Host: x')],
  ['HTTP/1.2', head('GET / HTTP/1.2', 'Host: x')],
  ['http/1.1', head('GET / http/1.1', 'Host: x')],
  ['HTTP/0.9', 'GET /\r\n\r\n'],
  ['absolute-form', head('GET http://x/ HTTP/1.1', 'Host: x')],
  ['asterisk-form', head('OPTIONS * HTTP/1.1', 'Host: x')],
  ['authority-form', head('CONNECT x:443 HTTP/1.1', 'Host: x:443')],
  ['CONNECT origin-form', head('CONNECT / HTTP/1.1', 'Host: x')],
  ['relative target', head('GET a/b HTTP/1.1', 'Host: x')],
  ['lowercase method', head('get / HTTP/1.1', 'Host: x')],
  ['mixed-case method', head('Get / HTTP/1.1', 'Host: x')],
  ['unknown method', head('FOO / HTTP/1.1', 'Host: x')],
  ['PRI', head('PRI / HTTP/1.1', 'Host: x')],
  ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ['method with a digit', head('GET2 / HTTP/1.1', 'Host: x')],
  ['two spaces', head('GET  / HTTP/1.1', 'Host: x')],
  ['tab separator', head('GET\t/ HTTP/1.1', 'Host: x')],
  ['trailing space', head('GET / HTTP/1.1 ', 'Host: x')],
  ['leading space', head(' GET / HTTP/1.1', 'Host: x')],
  ['leading empty line', `\r\n${head('GET / HTTP/1.1', 'Host: x')}`],
  ['space in target', head('GET /a b HTTP/1.1', 'Host: x')],
  ['non-ASCII target', head('GET /caf\xe9 HTTP/1.1', 'Host: x')],
  ['UTF-8 target', head('GET /\xc3\xa9 HTTP/1.1', 'Host: x')],
  ['NUL in target', head('GET /\x00 HTTP/1.1', 'Host: x')],
  ['DEL in target', head('GET /\x7f HTTP/1.1', 'Host: x')],
  ['tab in target', head('GET /a\tb HTTP/1.1', 'Host: x')],
  ['LF in request line', head('GET /\n HTTP/1.1', 'Host: x')],
  ['empty head', '\r\n\r\n'],
  // Protocol switches and interim responses: Node's job.
  ['Upgrade', head('GET / HTTP/1.1', 'Host: x', 'Connection: upgrade', 'Upgrade: websocket')],
  ['Upgrade alone', head('GET / HTTP/1.1', 'Host: x', 'Upgrade: h2c')],
  ['Expect', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Expect: 100-continue')],
  ['expect, lowercase', head('POST / HTTP/1.1', 'Host: x', 'expect: 100-continue')],
];

// ------------------------------------------------------------------------------------------
// Request heads
// ------------------------------------------------------------------------------------------

describe('parseRequestHead accepts its subset with the right fields', () => {
  it('a GET without a body', () => {
    assert.deepEqual(parseRequestHead(head('GET /a?b=c HTTP/1.1', 'Host: web--acme.localhost')), {
      method: 'GET',
      target: '/a?b=c',
      headers: ['Host', 'web--acme.localhost'],
      host: 'web--acme.localhost',
      body: { kind: 'none' },
      connection: [],
      close: false,
    });
  });

  it('a POST with a Content-Length', () => {
    const ours = parseRequestHead(
      head('POST /api HTTP/1.1', 'Host: x', 'Content-Length: 42', 'Content-Type: text/plain'),
    );
    assert.equal(ours?.method, 'POST');
    assert.deepEqual(ours?.body, { kind: 'length', bytes: 42 });
    assert.equal(
      parseRequestHead(head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 0'))?.body.kind,
      'none',
    );
    assert.deepEqual(
      parseRequestHead(head('POST / HTTP/1.1', 'Host: x', 'content-length: 0010'))?.body,
      { kind: 'length', bytes: 10 },
    );
    assert.deepEqual(
      parseRequestHead(head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 999999999999999'))?.body,
      { kind: 'length', bytes: 999999999999999 },
    );
  });

  it('a chunked POST, whatever the case of `chunked`', () => {
    for (const value of ['chunked', 'Chunked', 'CHUNKED', ' chunked ', '\tchunked'])
      assert.deepEqual(
        parseRequestHead(head('POST /up HTTP/1.1', 'Host: x', `Transfer-Encoding:${value}`))?.body,
        { kind: 'chunked' },
        value,
      );
  });

  it('Connection: close and keep-alive, options lowercased and in order', () => {
    const close = parseRequestHead(head('GET / HTTP/1.1', 'Host: x', 'Connection: Close'));
    assert.equal(close?.close, true);
    assert.deepEqual(close?.connection, ['close']);
    const keep = parseRequestHead(head('GET / HTTP/1.1', 'Host: x', 'Connection: keep-alive'));
    assert.equal(keep?.close, false);
    assert.deepEqual(keep?.connection, ['keep-alive']);
    const options = parseRequestHead(
      head(
        'GET / HTTP/1.1',
        'Host: x',
        'Connection: X-Trace , Keep-Alive,,\tTE',
        'connection: CLOSE',
      ),
    );
    assert.deepEqual(options?.connection, ['x-trace', 'keep-alive', 'te', 'close']);
    assert.equal(options?.close, true);
    // `close` has to be a whole option.
    const near = parseRequestHead(head('GET / HTTP/1.1', 'Host: x', 'Connection: closed, x-close'));
    assert.equal(near?.close, false);
    assert.deepEqual(near?.connection, ['closed', 'x-close']);
  });

  it('values lose surrounding spaces and tabs only; headers stay in order as sent', () => {
    const ours = parseRequestHead(
      head(
        'GET / HTTP/1.1',
        'X-First: 1',
        'hOsT: \t web--acme.localhost:8080 \t',
        'X-Spaced:   a  b   ',
        'X-Empty:',
        'x-first: 2',
        'X-Latin: caf\xe9\xa0',
      ),
    );
    assert.deepEqual(ours?.headers, [
      'X-First',
      '1',
      'hOsT',
      'web--acme.localhost:8080',
      'X-Spaced',
      'a  b',
      'X-Empty',
      '',
      'x-first',
      '2',
      'X-Latin',
      'caf\xe9\xa0',
    ]);
    assert.equal(ours?.host, 'web--acme.localhost:8080');
  });

  it('the blank line is optional and extra trailing empty lines are ignored', () => {
    const expected = parseRequestHead(head('GET / HTTP/1.1', 'Host: x'));
    assert.ok(expected);
    assert.deepEqual(parseRequestHead('GET / HTTP/1.1\r\nHost: x'), expected);
    assert.deepEqual(parseRequestHead('GET / HTTP/1.1\r\nHost: x\r\n'), expected);
  });

  it('every valid fixture is accepted', () => {
    for (const [label, text] of VALID) assert.ok(parseRequestHead(text), label);
  });

  it('the methods Node knows, except CONNECT', () => {
    for (const method of http.METHODS) {
      const ours = parseRequestHead(head(`${method} / HTTP/1.1`, 'Host: x'));
      if (method === 'CONNECT' || method === 'M-SEARCH') assert.equal(ours, null, method);
      else assert.equal(ours?.method, method);
    }
  });
});

describe('parseRequestHead refuses (null) anything ambiguous or outside the subset', () => {
  for (const [label, text] of REJECTED)
    it(label, () => {
      assert.equal(parseRequestHead(text), null, JSON.stringify(text));
    });
});

// ------------------------------------------------------------------------------------------
// Differential against Node's parser
// ------------------------------------------------------------------------------------------

describe("differential against Node's parser", () => {
  const oracle = new NodeOracle();
  before(() => oracle.start());
  after(() => oracle.stop());

  it('the oracle itself tells a framing mismatch from agreement', async () => {
    const text = head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5');
    const [exact, over, under, smuggle] = await oracle.sendAll([
      bytes(`${text}hello${SECOND}`),
      bytes(`${text}hello!${SECOND}`),
      bytes(`${text}hell${SECOND}`),
      bytes(
        `${head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 3', 'Transfer-Encoding: chunked')}0\r\n\r\n${SECOND}`,
      ),
    ]);
    assert.deepEqual(
      exact?.requests.map((r) => [r.method, r.url, r.body]),
      [
        ['POST', '/', 5],
        ['GET', '/second', 0],
      ],
    );
    assert.equal(exact?.error, null);
    assert.equal(over?.requests.length, 1);
    assert.equal(over?.error, 'HPE_INVALID_METHOD');
    // One byte short: the body takes the G of GET, and `ET /second` is no request.
    assert.equal(under?.requests.length, 1);
    assert.equal(under?.error, 'HPE_INVALID_METHOD');
    // Node itself refuses the classic CL.TE ambiguity.
    assert.equal(smuggle?.requests.length, 0);
    assert.equal(smuggle?.error, 'HPE_INVALID_TRANSFER_ENCODING');
  });

  it('every tricky head ours accepts, Node accepts and frames the same way', async () => {
    const cases: Array<[string, string]> = [...VALID, ...REJECTED];
    // Near misses of the cases ours refuses, which it should accept.
    cases.push(
      ['space after length', head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 5 ')],
      ['TE list of one', head('POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding:  chunked ')],
      ['keep-alive, close', head('POST / HTTP/1.1', 'Host: x', 'Connection: keep-alive, close')],
    );
    const probes: Probe[] = [];
    let refused = 0;
    for (const [label, text] of cases) {
      const end = headEnd(bytes(text));
      const ours = end < 0 ? null : parseRequestHead(text.slice(0, end));
      if (!ours) {
        refused++;
        continue;
      }
      const p = probe(label, text.slice(0, end), ours);
      assert.ok(p, label);
      probes.push(p);
    }
    // Not vacuous: every VALID head (bar the one without a blank line) went to Node.
    assert.equal(probes.length, VALID.length - 1 + 3);
    assert.equal(refused, REJECTED.length + 1);
    const views = await oracle.sendAll(probes.map((p) => p.wire));
    probes.forEach((p, i) => {
      assertAgrees(p, views[i] as NodeView);
    });
  });

  it('every chunked body our scanner accepts, Node ends at the same byte', async () => {
    const text = head('POST /up HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked');
    const ours = parseRequestHead(text);
    assert.ok(ours);
    const bodies: Array<[string, number]> = [
      ['0\r\n\r\n', 0],
      ['5\r\nhello\r\n0\r\n\r\n', 5],
      ['00000005\r\nhello\r\n000\r\n\r\n', 5],
      ['a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n', 20],
      ['5;a\r\nhello\r\n0\r\n\r\n', 5],
      ['5;a=b\r\nhello\r\n0;last\r\n\r\n', 5],
      ['5;a=b;c;d=e\r\nhello\r\n0\r\n\r\n', 5],
      ['5;a="b c"\r\nhello\r\n0\r\n\r\n', 5],
      ['5;a="b\\"c;d=e"\r\nhello\r\n0\r\n\r\n', 5],
      ['5;a="\t\xff"\r\nhello\r\n0\r\n\r\n', 5],
      ['5;a="";b=c\r\nhello\r\n0\r\n\r\n', 5],
      ['5\r\n0\r\n\r\n\r\n0\r\n\r\n', 5],
      ['5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n', 5],
      ['5\r\nhello\r\n0\r\nX-A:\r\nX-B: \xff\t\r\nHost: y\r\n\r\n', 5],
      ['3\r\nGET\r\n0\r\n\r\n', 3],
    ];
    const refusedBodies: string[] = [
      '5;\r\nhello\r\n0\r\n\r\n',
      '5; a\r\nhello\r\n0\r\n\r\n',
      '5 ;a\r\nhello\r\n0\r\n\r\n',
      '5;a =b\r\nhello\r\n0\r\n\r\n',
      '5;a= b\r\nhello\r\n0\r\n\r\n',
      '5;a=b \r\nhello\r\n0\r\n\r\n',
      '5;a b\r\nhello\r\n0\r\n\r\n',
      '5;\ta\r\nhello\r\n0\r\n\r\n',
      '5;;\r\nhello\r\n0\r\n\r\n',
      '5;a;\r\nhello\r\n0\r\n\r\n',
      '5;a==b\r\nhello\r\n0\r\n\r\n',
      '5;a=b=c\r\nhello\r\n0\r\n\r\n',
      '5;a=b,c\r\nhello\r\n0\r\n\r\n',
      '5;a="bc"x\r\nhello\r\n0\r\n\r\n',
      '5;a="bc\r\nhello\r\n0\r\n\r\n',
      '5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n',
      '5\r\nhello\r\n0\r\ntransfer-encoding: chunked\r\n\r\n',
      '5\r\nhello\r\n0\r\nX :y\r\n\r\n',
      '5\r\nhello\r\n0\r\n y\r\n\r\n',
      '5\nhello\r\n0\r\n\r\n',
      '5\r\nhello\n0\r\n\r\n',
      '5\r\nhello\r\n0\n\r\n',
      '5\r\nhello\r\n0\r\n\n',
      '0x5\r\nhello\r\n0\r\n\r\n',
      '-5\r\nhello\r\n0\r\n\r\n',
      '+5\r\nhello\r\n0\r\n\r\n',
      '000000005\r\nhello\r\n0\r\n\r\n',
      '\r\n5\r\nhello\r\n0\r\n\r\n',
    ];
    const probes: Probe[] = [];
    for (const [body, decoded] of bodies) {
      const p = probe(JSON.stringify(body), text, ours, { body, decoded });
      assert.ok(p, `the scanner accepts ${JSON.stringify(body)}`);
      probes.push(p);
    }
    for (const body of refusedBodies)
      assert.equal(
        new ChunkedScanner().push(bytes(body + SECOND)),
        -1,
        `the scanner refuses ${JSON.stringify(body)}`,
      );
    const views = await oracle.sendAll(probes.map((p) => p.wire));
    probes.forEach((p, i) => {
      assertAgrees(p, views[i] as NodeView);
    });
  });

  it('fuzz: mutated heads ours accepts, Node accepts with the same framing', async (t) => {
    const random = mulberry32(FUZZ_SEED);
    const bases = [
      head(
        'GET /index.html?q=1 HTTP/1.1',
        'Host: web--acme.localhost',
        'User-Agent: fuzz/1.0',
        'Accept: */*',
      ),
      head('POST /api HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Content-Type: text/plain'),
      head('PUT /up HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Connection: keep-alive'),
      head(
        'DELETE /a/b HTTP/1.1',
        'host: x',
        'connection: close',
        'X-Forwarded-For: 1.2.3.4, 5.6.7.8',
      ),
      head(
        'PATCH /p HTTP/1.1',
        'Host: x:8080',
        'Content-Length: 12',
        'Connection: x-a, keep-alive',
        'X-A: b',
      ),
      head('OPTIONS /o HTTP/1.1', 'Transfer-Encoding:chunked', 'Host:x', 'Content-Type:a/b'),
    ];
    // Single bytes that matter to the grammar, then whole fragments of a line.
    const alphabet = [
      ...'\r\n \t:,;="/?#%-aAk0159\x00\x01\x0b\x0c\x7f\x80\xa0\xff',
      '\r\n',
      '\r\n ',
      '\r\nHost: y',
      '\r\nContent-Length: 3',
      '\r\nTransfer-Encoding: chunked',
    ];
    const pick = pickWith(random);
    const mutate = (text: string): string => mutateHead(random, text, alphabet);
    const ITERATIONS = Math.round(4000 * FUZZ_SCALE);
    const probes: Probe[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      let text = pick(bases);
      const rounds = 1 + Math.floor(random() * 3);
      for (let r = 0; r < rounds; r++) text = mutate(text);
      const end = headEnd(bytes(text));
      if (end < 0) continue;
      const cut = text.slice(0, end);
      const ours = parseRequestHead(cut);
      if (!ours || seen.has(cut)) continue;
      seen.add(cut);
      const p = probe(`fuzz #${i}`, cut, ours);
      assert.ok(p);
      probes.push(p);
    }
    // Enough of the mutants stay in the subset for the comparison to mean something.
    assert.ok(probes.length > 500, `only ${probes.length} mutants accepted`);
    t.diagnostic(
      `seed ${FUZZ_SEED}: ${ITERATIONS} mutants, ${probes.length} distinct heads accepted and sent to Node`,
    );
    const views = await oracle.sendAll(probes.map((p) => p.wire));
    probes.forEach((p, i) => {
      assertAgrees(p, views[i] as NodeView);
    });
  });

  it('fuzz: mutated chunked bodies our scanner ends, Node ends at the same byte', async (t) => {
    const random = mulberry32(FUZZ_SEED ^ 0xc0ffee);
    const text = head('POST /up HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked');
    const base = '5;a=b\r\nhello\r\nA;x="y z"\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n';
    const alphabet = [...'\r\n \t;="\\:05aFx\xff'];
    const ITERATIONS = Math.round(3000 * FUZZ_SCALE);
    const inputs: Buffer[] = [];
    const ends: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      let body = base;
      for (let r = 1 + Math.floor(random() * 2); r > 0; r--) {
        const at = Math.floor(random() * body.length);
        const ch = alphabet[Math.floor(random() * alphabet.length)] as string;
        body =
          random() < 0.5
            ? body.slice(0, at) + ch + body.slice(at + 1)
            : body.slice(0, at) + ch + body.slice(at);
      }
      const scanner = new ChunkedScanner();
      const used = scanner.push(bytes(body));
      if (used < 0 || !scanner.done || seen.has(body.slice(0, used))) continue;
      seen.add(body.slice(0, used));
      // The relay would send exactly `used` bytes on as this body; what follows is SECOND.
      inputs.push(bytes(text + body.slice(0, used) + SECOND));
      ends.push(used);
    }
    assert.ok(inputs.length > 300, `only ${inputs.length} mutants accepted`);
    t.diagnostic(
      `seed ${FUZZ_SEED}: ${ITERATIONS} mutants, ${inputs.length} distinct bodies accepted and sent to Node`,
    );
    const views = await oracle.sendAll(inputs);
    views.forEach((view, i) => {
      const where = `${JSON.stringify(inputs[i]?.toString('latin1'))} → ${JSON.stringify(view)}`;
      assert.equal(view.error, null, where);
      assert.deepEqual(
        view.requests.map((r) => r.url),
        ['/up', '/second'],
        where,
      );
      assert.ok((view.requests[0]?.body ?? -1) >= 0, where);
    });
  });
});

// ------------------------------------------------------------------------------------------
// Response heads
// ------------------------------------------------------------------------------------------

describe('parseResponseHead', () => {
  const response = (...lines: string[]) => head(...lines);

  it('200 with a Content-Length', () => {
    assert.deepEqual(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Length: 12', 'X-A:  b '), 'GET'),
      {
        status: 200,
        reason: 'OK',
        headers: ['Content-Length', '12', 'X-A', 'b'],
        body: { kind: 'length', bytes: 12 },
        connection: [],
        close: false,
      },
    );
    assert.deepEqual(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Length: 0'), 'GET')?.body,
      { kind: 'none' },
    );
  });

  it('chunked, when chunked is the final coding', () => {
    for (const value of ['chunked', 'Chunked', 'gzip, chunked', 'gzip,chunked', ' gzip , chunked '])
      assert.deepEqual(
        parseResponseHead(response('HTTP/1.1 200 OK', `Transfer-Encoding: ${value}`), 'GET')?.body,
        { kind: 'chunked' },
        value,
      );
  });

  it('Transfer-Encoding without a final chunked: until the connection closes', () => {
    for (const value of [
      'gzip',
      'chunked, gzip',
      'identity',
      'xchunked',
      'chunked;q=1',
      'chunked\xa0',
    ])
      assert.deepEqual(
        parseResponseHead(response('HTTP/1.1 200 OK', `Transfer-Encoding: ${value}`), 'GET')?.body,
        { kind: 'close' },
        value,
      );
  });

  it('Transfer-Encoding overrides Content-Length (RFC 9112 §6.3)', () => {
    assert.deepEqual(
      parseResponseHead(
        response('HTTP/1.1 200 OK', 'Content-Length: 5', 'Transfer-Encoding: chunked'),
        'GET',
      )?.body,
      { kind: 'chunked' },
    );
  });

  it('neither length nor chunked: until the connection closes', () => {
    assert.deepEqual(parseResponseHead(response('HTTP/1.1 200 OK'), 'GET')?.body, {
      kind: 'close',
    });
    assert.deepEqual(parseResponseHead(response('HTTP/1.0 200 OK'), 'POST')?.body, {
      kind: 'close',
    });
  });

  it('no body for HEAD, 1xx, 204 and 304, whatever the fields say', () => {
    const framed = response('HTTP/1.1 200 OK', 'Content-Length: 10');
    assert.deepEqual(parseResponseHead(framed, 'HEAD')?.body, { kind: 'none' });
    assert.deepEqual(parseResponseHead(framed, 'GET')?.body, { kind: 'length', bytes: 10 });
    assert.deepEqual(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), 'HEAD')?.body,
      { kind: 'none' },
    );
    for (const status of [
      '100 Continue',
      '101 Switching Protocols',
      '103 Early Hints',
      '204 No Content',
      '304 Not Modified',
    ]) {
      const ours = parseResponseHead(
        response(`HTTP/1.1 ${status}`, 'Content-Length: 10', 'Transfer-Encoding: chunked'),
        'GET',
      );
      assert.deepEqual(ours?.body, { kind: 'none' }, status);
      assert.equal(ours?.status, Number(status.slice(0, 3)));
    }
    assert.deepEqual(
      parseResponseHead(response('HTTP/1.1 205 Reset Content', 'Content-Length: 0'), 'GET')?.body,
      { kind: 'none' },
    );
  });

  it('HTTP/1.0 closes unless keep-alive; 1.1 keeps alive unless close', () => {
    const close = (...lines: string[]) => parseResponseHead(response(...lines), 'GET')?.close;
    assert.equal(close('HTTP/1.0 200 OK', 'Content-Length: 1'), true);
    assert.equal(close('HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive'), false);
    assert.equal(close('HTTP/1.0 200 OK', 'Connection: Keep-Alive, x-a'), false);
    assert.equal(close('HTTP/1.0 200 OK', 'Connection: keep-alive, close'), true);
    assert.equal(close('HTTP/1.1 200 OK', 'Content-Length: 1'), false);
    assert.equal(close('HTTP/1.1 200 OK', 'Connection: close'), true);
    assert.equal(close('HTTP/1.1 200 OK', 'Connection: x-a,CLOSE'), true);
    assert.equal(close('HTTP/1.1 200 OK', 'Connection: keep-alive'), false);
    assert.deepEqual(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Connection: X-A, Close'), 'GET')?.connection,
      ['x-a', 'close'],
    );
  });

  it('status line: reason optional, any 3-digit status', () => {
    const notFound = parseResponseHead(response('HTTP/1.1 404'), 'GET');
    assert.deepEqual([notFound?.status, notFound?.reason], [404, '']);
    assert.equal(parseResponseHead(response('HTTP/1.1 418 '), 'GET')?.reason, '');
    assert.equal(
      parseResponseHead(response('HTTP/1.1 500 Internal  Server\tError'), 'GET')?.reason,
      'Internal  Server\tError',
    );
    assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 1', 'GET')?.status, 200);
  });

  it('malformed status lines: null', () => {
    for (const line of [
      'HTTP/1.1 200OK',
      'HTTP/1.1 20 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1  200 OK',
      'HTTP/1.1 abc OK',
      'HTTP/1.2 200 OK',
      'HTTP/2 200 OK',
      'HTTP/2.0 200 OK',
      'http/1.1 200 OK',
      'ICY 200 OK',
      ' HTTP/1.1 200 OK',
      'HTTP/1.1 200 O\rK',
      'HTTP/1.1 200 O\nK',
      'HTTP/1.1 200 O\x00K',
      '',
    ])
      assert.equal(parseResponseHead(response(line, 'Content-Length: 1'), 'GET'), null, line);
  });

  it('malformed or ambiguous fields: null', () => {
    for (const fields of [
      ['Content-Length: 5', 'Content-Length: 5'],
      ['Content-Length: 5', 'Content-Length: 6'],
      ['Content-Length: 5, 5'],
      ['Content-Length: -1'],
      ['Content-Length: 5\t'],
      ['Content-Length: 5\xa0'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
      ['Bad Name: x'],
      ['X-A: b', ' folded'],
      ['X-A: b\x00'],
      ['X-A: b\r'],
      ['X-A : b'],
    ])
      assert.equal(
        parseResponseHead(response('HTTP/1.1 200 OK', ...fields), 'GET'),
        null,
        JSON.stringify(fields),
      );
  });
});

// ------------------------------------------------------------------------------------------
// ChunkedScanner
// ------------------------------------------------------------------------------------------

describe('ChunkedScanner', () => {
  const BODY =
    '4\r\nWiki\r\n6;name=value;flag\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n' +
    '10;q="a;b\\"c"\r\n0123456789abcdef\r\n0;last\r\nExpires: never\r\nX-Sum:\t1\r\n\r\n';
  const NEXT = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';

  it('one push: consumes the body and not a byte of the next message', () => {
    const scanner = new ChunkedScanner();
    assert.equal(scanner.push(bytes(BODY + NEXT)), BODY.length);
    assert.equal(scanner.done, true);
    // Done: nothing more is the body's.
    assert.equal(scanner.push(bytes(NEXT)), 0);
  });

  it('the offset argument: counts from there', () => {
    const scanner = new ChunkedScanner();
    const data = bytes(`${NEXT}${BODY}${NEXT}`);
    assert.equal(scanner.push(data, NEXT.length), BODY.length);
    assert.equal(scanner.done, true);
  });

  it('byte by byte: done exactly after the last byte of the body', () => {
    const scanner = new ChunkedScanner();
    const data = bytes(BODY + NEXT);
    for (let i = 0; i < data.length; i++) {
      const used = scanner.push(data.subarray(i, i + 1));
      assert.equal(used, i < BODY.length ? 1 : 0, `byte ${i}`);
      assert.equal(scanner.done, i >= BODY.length - 1, `byte ${i}`);
    }
  });

  it('two pieces, split at every offset', () => {
    const data = bytes(BODY + NEXT);
    for (let cut = 0; cut <= data.length; cut++) {
      const scanner = new ChunkedScanner();
      const first = scanner.push(data.subarray(0, cut));
      assert.equal(first, Math.min(cut, BODY.length), `cut ${cut}`);
      assert.equal(scanner.done, cut >= BODY.length, `cut ${cut}`);
      const second = scanner.push(data, cut);
      assert.equal(first + second, BODY.length, `cut ${cut}`);
      assert.equal(scanner.done, true);
    }
  });

  it('three pieces, every pair of cuts, through a small body', () => {
    const body = '3;e\r\nabc\r\n0\r\nT: 1\r\n\r\n';
    const data = bytes(body + NEXT);
    for (let a = 0; a <= data.length; a++)
      for (let b = a; b <= data.length; b++) {
        const scanner = new ChunkedScanner();
        const used =
          scanner.push(data.subarray(0, a)) +
          scanner.push(data.subarray(a, b)) +
          scanner.push(data.subarray(b));
        assert.equal(used, body.length, `cuts ${a}, ${b}`);
        assert.equal(scanner.done, true);
      }
  });

  it('the shortest body, sizes in either case, leading zeros, 8 hex digits', () => {
    for (const body of [
      '0\r\n\r\n',
      '00000000\r\n\r\n',
      'a\r\n0123456789\r\n0\r\n\r\n',
      'A\r\n0123456789\r\n0\r\n\r\n',
      '0000000a\r\n0123456789\r\n0\r\n\r\n',
    ]) {
      const scanner = new ChunkedScanner();
      assert.equal(scanner.push(bytes(body + NEXT)), body.length, JSON.stringify(body));
      assert.equal(scanner.done, true);
    }
    // FFFFFFFF is a valid size: all of what follows is data, not yet done.
    const big = new ChunkedScanner();
    assert.equal(big.push(bytes(`FFFFFFFF\r\n${NEXT}`)), 10 + NEXT.length);
    assert.equal(big.done, false);
    assert.equal(big.push(Buffer.alloc(1 << 16)), 1 << 16);
    assert.equal(big.done, false);
  });

  it('a chunk that looks like a message or a terminator is still data', () => {
    const body = `${(NEXT.length + 5).toString(16)}\r\n${NEXT}0\r\n\r\n\r\n0\r\n\r\n`;
    const scanner = new ChunkedScanner();
    assert.equal(scanner.push(bytes(body + NEXT)), body.length);
    assert.equal(scanner.done, true);
  });

  it('chunk extensions: tokens and quoted strings', () => {
    for (const ext of [
      ';a',
      ';a=b',
      ';a=b;c',
      ';a="b c"',
      ';a="b\\"c"',
      ';a="\t\xff"',
      ';a=""',
      ";!#$%&'*+-.^_`|~=x",
    ]) {
      const body = `5${ext}\r\nhello\r\n0${ext}\r\n\r\n`;
      assert.equal(new ChunkedScanner().push(bytes(body + NEXT)), body.length, ext);
    }
  });

  it('trailers: any fields but the framing ones', () => {
    for (const trailer of ['X-A: b\r\n', 'X-A:\r\n', 'X-A: b\t\r\nHost: y\r\nX-B: \xff\r\n']) {
      const body = `5\r\nhello\r\n0\r\n${trailer}\r\n`;
      assert.equal(new ChunkedScanner().push(bytes(body + NEXT)), body.length, trailer);
    }
  });

  const malformed: Array<[string, string]> = [
    ['LF without CR after the size', '5\nhello\r\n0\r\n\r\n'],
    ['CR without LF after the size', '5\rhello\r\n0\r\n\r\n'],
    ['non-hex size', 'g\r\nhello\r\n0\r\n\r\n'],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['signed size', '+5\r\nhello\r\n0\r\n\r\n'],
    ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['9 hex digits', '000000005\r\nhello\r\n0\r\n\r\n'],
    ['a size over 32 bits', '100000000\r\n'],
    ['empty size line', '\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['space before the size', ' 5\r\nhello\r\n0\r\n\r\n'],
    ['space after the size', '5 \r\nhello\r\n0\r\n\r\n'],
    ['tab after the size', '5\t\r\nhello\r\n0\r\n\r\n'],
    ['space before an extension', '5 ;a\r\nhello\r\n0\r\n\r\n'],
    ['empty extension', '5;\r\nhello\r\n0\r\n\r\n'],
    ['space in an extension', '5;a b\r\nhello\r\n0\r\n\r\n'],
    ['space around =', '5;a = b\r\nhello\r\n0\r\n\r\n'],
    ['junk after a quoted value', '5;a="b"c\r\nhello\r\n0\r\n\r\n'],
    ['unterminated quote', '5;a="b\r\nhello\r\n0\r\n\r\n'],
    ['CR in an extension', '5;a\rb\r\nhello\r\n0\r\n\r\n'],
    ['data longer than its size', '5\r\nhello!\r\n0\r\n\r\n'],
    ['data shorter than its size', '5\r\nhell\r\n0\r\n\r\n'],
    ['data then LF only', '5\r\nhello\n0\r\n\r\n'],
    ['data then CR only', '5\r\nhello\r0\r\n\r\n'],
    ['last chunk then LF only', '5\r\nhello\r\n0\n\r\n'],
    ['bare LF ending the trailers', '5\r\nhello\r\n0\r\n\n'],
    ['malformed trailer', '5\r\nhello\r\n0\r\nno colon\r\n\r\n'],
    ['space before a trailer colon', '5\r\nhello\r\n0\r\nX-A : b\r\n\r\n'],
    ['folded trailer', '5\r\nhello\r\n0\r\nX-A: b\r\n c\r\n\r\n'],
    ['NUL in a trailer', '5\r\nhello\r\n0\r\nX-A: \x00\r\n\r\n'],
    ['Content-Length trailer', '5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n'],
    ['Transfer-Encoding trailer', '5\r\nhello\r\n0\r\nTRANSFER-ENCODING: chunked\r\n\r\n'],
  ];
  for (const [label, body] of malformed)
    it(`malformed: ${label}`, () => {
      assert.equal(new ChunkedScanner().push(bytes(body + NEXT)), -1);
      // The same, byte by byte: -1 at some byte, never done.
      const scanner = new ChunkedScanner();
      const data = bytes(body + NEXT);
      let result = 0;
      for (let i = 0; i < data.length && result >= 0 && !scanner.done; i++)
        result = scanner.push(data.subarray(i, i + 1));
      assert.equal(result, -1);
      assert.equal(scanner.done, false);
    });

  it('an over-long size line: -1, in one piece or streamed', () => {
    const long = `5;a=${'b'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`;
    assert.equal(new ChunkedScanner().push(bytes(long)), -1);
    const scanner = new ChunkedScanner();
    let result = 0;
    let fed = 0;
    while (result >= 0 && fed < 10_000) {
      result = scanner.push(bytes('1;x='.padEnd(100, 'y')));
      fed += 100;
    }
    assert.equal(result, -1);
    assert.ok(fed > 4096 && fed <= 4200, `refused after ${fed} bytes`);
    // Just under the limit is fine.
    const ok = `1;a=${'b'.repeat(4000)}\r\nx\r\n0\r\n\r\n`;
    assert.equal(new ChunkedScanner().push(bytes(ok)), ok.length);
    // The same limit holds for a trailer line.
    assert.equal(new ChunkedScanner().push(bytes(`0\r\nX-A: ${'b'.repeat(5000)}\r\n\r\n`)), -1);
  });
});

// ------------------------------------------------------------------------------------------
// headEnd
// ------------------------------------------------------------------------------------------

describe('headEnd', () => {
  it('the index just after the blank line', () => {
    const text = head('GET / HTTP/1.1', 'Host: x');
    assert.equal(headEnd(bytes(text)), text.length);
    assert.equal(headEnd(bytes(`${text}body\r\n\r\nmore`)), text.length);
    assert.equal(headEnd(bytes('\r\n\r\n')), 4);
    assert.equal(headEnd(bytes('a\r\n\r\n\r\n')), 5);
  });

  it('-1 while the head is incomplete or ends with bare LFs', () => {
    for (const text of [
      '',
      'GET / HTTP/1.1',
      'GET / HTTP/1.1\r\nHost: x\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n\r',
      'GET / HTTP/1.1\nHost: x\n\n',
      'a\r\n\n\r\n',
      'a\n\r\n\r',
    ])
      assert.equal(headEnd(bytes(text)), -1, JSON.stringify(text));
  });

  it('splits a head from what follows, byte for byte', () => {
    const text = head('POST / HTTP/1.1', 'Host: x', 'Content-Length: 4');
    const data = bytes(`${text}\r\n\r\n${SECOND}`);
    for (let cut = 0; cut <= data.length; cut++)
      assert.equal(headEnd(data.subarray(0, cut)), cut >= text.length ? text.length : -1);
  });
});
