// The native relay's parsing (native/app-relay.c) against the relay's own in JavaScript
// (http1.ts, app-relay.ts, app-gateway.ts), which http1.test.ts holds against Node's parser:
// whatever the native relay takes, JavaScript takes too, and the bytes it sends on are the
// ones app-relay.ts would have sent. Fixed cases first, then seeded mutants.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NATIVE_RELAY_RULES, relayHeadLines } from './app-gateway.js';
import { requestView, responseText, templateFor } from './app-relay.js';
import { mulberry32, mutateHead, pickWith } from './fuzz-support.js';
import { ChunkedScanner, headEnd, parseRequestHead, parseResponseHead } from './http1.js';
import { loadRelayAddon, nativeRules } from './native-relay.js';

const addon = loadRelayAddon();
assert.ok(addon, 'the native relay is built with the server (npm run build)');
const lib = addon;
const rules = nativeRules(5_000, 2_000);
const FUZZ_SEED = Number(process.env.SNAPVM_FUZZ_SEED ?? 20261207);

const head = (...lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;
const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const REMOTE = { remoteAddress: '127.0.0.1' };
const HOST = 'web--acme.localhost:8080';
const END = `X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ${HOST}\r\n\r\n`;

/** The template app-relay.ts would give the native relay after relaying `text`. */
function templateOf(text: string) {
  const parsed = parseRequestHead(text);
  const view = parsed && requestView(parsed, REMOTE);
  assert.ok(view, `the template request is in the subset: ${JSON.stringify(text)}`);
  return templateFor(view, 'machine-1', END, Date.now() + 60_000);
}

/**
 * The native relay's head for `text` under `template`, checked against JavaScript's: null when
 * the native relay hands the request back.
 */
function nativeHead(template: ReturnType<typeof templateOf>, text: string): string | null {
  const native = lib.requestHead(rules, template, bytes(text));
  if (native === null) return null;
  const where = JSON.stringify(text);
  const parsed = parseRequestHead(text);
  assert.ok(parsed, `JavaScript refuses what the native relay took: ${where}`);
  assert.ok(parsed.method === 'GET' || parsed.method === 'HEAD', where);
  assert.deepEqual(parsed.body, { kind: 'none' }, where);
  assert.equal(parsed.close, false, where);
  const view = requestView(parsed, REMOTE);
  assert.ok(view, where);
  // Every input to the gateway's decision is the template's.
  assert.equal(view.headers.host, template.host.toString('latin1'), where);
  assert.equal(view.headers.authorization, template.authorization?.toString('latin1'), where);
  assert.equal(view.headers.cookie, template.cookie?.toString('latin1'), where);
  assert.equal(view.headers['x-forwarded-for'], undefined, where);
  assert.equal(view.headers['x-forwarded-proto'], undefined, where);
  assert.ok(!view.url.startsWith(NATIVE_RELAY_RULES.reservedPrefix), where);
  assert.equal(native.toString('latin1'), relayHeadLines(view) + END, where);
  return native.toString('latin1');
}

const BROWSER = head(
  'GET /index.html?q=1 HTTP/1.1',
  `Host: ${HOST}`,
  'User-Agent: test/1.0',
  'Authorization: Bearer snapvm_tok_abc',
  'Cookie: snapvm_session=s1; theirs=kept; snapvm_app_0123456789abcdef=a1',
  'Accept: text/html',
  'Connection: keep-alive',
);

describe('native relay: request heads', () => {
  it('relays a request that repeats the template, with SnapVM credentials stripped', () => {
    const template = templateOf(BROWSER);
    assert.equal(
      nativeHead(template, BROWSER.replace('/index.html?q=1', '/next')),
      [
        'GET /next HTTP/1.1',
        `Host: ${HOST}`,
        'User-Agent: test/1.0',
        'Cookie: theirs=kept',
        'Accept: text/html',
        END,
      ].join('\r\n'),
    );
    // HEAD, other headers, other whitespace around values: all still the same request.
    const other = head(
      'HEAD /h HTTP/1.1',
      `host:   ${HOST}  `,
      'authorization: Bearer snapvm_tok_abc',
      'X-Custom: a\tb',
      'cookie: snapvm_session=s1; theirs=kept; snapvm_app_0123456789abcdef=a1',
    );
    assert.equal(
      nativeHead(template, other),
      ['HEAD /h HTTP/1.1', `host: ${HOST}`, 'X-Custom: a\tb', 'cookie: theirs=kept', END].join(
        '\r\n',
      ),
    );
    // Credentials that are not SnapVM's go on to the app.
    const basic = head('GET / HTTP/1.1', 'Host: x', 'Authorization: Basic dTpw', 'Cookie: a=b');
    assert.equal(
      nativeHead(templateOf(basic), basic),
      ['GET / HTTP/1.1', 'Host: x', 'Authorization: Basic dTpw', 'Cookie: a=b', END].join('\r\n'),
    );
    const anonymous = head('GET / HTTP/1.1', 'Host: x');
    assert.equal(
      nativeHead(templateOf(anonymous), anonymous),
      `GET / HTTP/1.1\r\nHost: x\r\n${END}`,
    );
  });

  it('hands back anything that is not the same plain request', () => {
    const template = templateOf(BROWSER);
    const without = (name: string) =>
      BROWSER.split('\r\n')
        .filter((line) => !line.startsWith(`${name}:`))
        .join('\r\n');
    const plus = (line: string) =>
      BROWSER.replace('Accept: text/html', `Accept: text/html\r\n${line}`);
    const cases: [string, string][] = [
      ['another token', BROWSER.replace('snapvm_tok_abc', 'snapvm_tok_abd')],
      ['no token', without('Authorization')],
      ['another session', BROWSER.replace('snapvm_session=s1', 'snapvm_session=s2')],
      ['an app cookie changed', BROWSER.replace('theirs=kept', 'theirs=new')],
      ['no cookie', without('Cookie')],
      ['another host', BROWSER.replace(`Host: ${HOST}`, 'Host: other--acme.localhost:8080')],
      ['a second Host', plus(`Host: ${HOST}`)],
      ['a second Authorization', plus('Authorization: Bearer snapvm_tok_abc')],
      ['a POST', BROWSER.replace('GET ', 'POST ')],
      ['a DELETE', BROWSER.replace('GET ', 'DELETE ')],
      ['HTTP/1.0', BROWSER.replace('HTTP/1.1', 'HTTP/1.0')],
      ['a reserved path', BROWSER.replace('/index.html?q=1', '/__snapvm/ticket')],
      ['an absolute target', BROWSER.replace('/index.html?q=1', 'http://x/')],
      ['Content-Length: 0', plus('Content-Length: 0')],
      ['Transfer-Encoding', plus('Transfer-Encoding: chunked')],
      ['Connection: close', BROWSER.replace('Connection: keep-alive', 'Connection: close')],
      ['Connection naming a header', BROWSER.replace('Connection: keep-alive', 'Connection: X-A')],
      ['Keep-Alive', plus('Keep-Alive: timeout=5')],
      ['Upgrade', plus('Upgrade: websocket')],
      ['Expect', plus('Expect: 100-continue')],
      ['TE', plus('TE: trailers')],
      ['Proxy-Authorization', plus('Proxy-Authorization: Basic x')],
      ['X-Forwarded-For', plus('X-Forwarded-For: 6.6.6.6')],
      ['X-Forwarded-Anything', plus('x-forwarded-whatever: 1')],
      ['the agent token header', plus('X-SnapVM-Agent-Token: t')],
      ['a folded line', plus('X-A: b\r\n c')],
      ['a bare LF', plus('X-A: b\nX-B: c')],
      ['a NUL in a value', plus('X-A: b\x00c')],
      ['a space before the colon', plus('X-A : b')],
      ['an empty name', plus(': b')],
    ];
    for (const [what, text] of cases)
      assert.equal(lib.requestHead(rules, template, bytes(text)), null, what);
    // The agent token header must be one the rules name, whatever its spelling.
    assert.ok(NATIVE_RELAY_RULES.deniedHeaders.includes('x-snapvm-agent-token'));
  });

  it('fuzz: mutated requests the native relay takes, JavaScript takes and sends the same', (t) => {
    const random = mulberry32(FUZZ_SEED);
    const pick = pickWith(random);
    const bases = [
      BROWSER,
      head(
        'HEAD /h?x=1 HTTP/1.1',
        'host: x',
        'cookie: a=b',
        'X-Custom: v',
        'Accept-Encoding: gzip',
      ),
      head('GET / HTTP/1.1', 'Host: x:1', 'Authorization: Basic dTpw', 'Connection: Keep-Alive'),
    ];
    const alphabet = [
      ...'\r\n \t:,;="/?#%-aAkKxX0159_\x00\x01\x0b\x7f\x80\xa0\xff',
      '\r\n',
      '\r\n ',
      `\r\nHost: ${HOST}`,
      '\r\nHost: y',
      '\r\nContent-Length: 0',
      '\r\nTransfer-Encoding: chunked',
      '\r\nConnection: close',
      '\r\nConnection: keep-alive',
      '\r\nKeep-Alive: 5',
      '\r\nCookie: a=b',
      '\r\nAuthorization: Bearer snapvm_tok_abc',
      '\r\nX-Forwarded-For: 1.1.1.1',
      '\r\nExpect: 100-continue',
      '\r\nUpgrade: h2c',
      '\r\nX-SnapVM-Agent-Token: t',
      'snapvm_',
      'HEAD',
      'POST',
    ];
    const templates = new Map(bases.map((base) => [base, templateOf(base)]));
    const ITERATIONS = 6000;
    let taken = 0;
    let distinct = 0;
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const base = pick(bases);
      let text = base;
      for (let r = 1 + Math.floor(random() * 3); r > 0; r--)
        text = mutateHead(random, text, alphabet);
      const end = headEnd(bytes(text));
      if (end < 0) continue;
      const cut = text.slice(0, end);
      if (seen.has(cut)) continue;
      seen.add(cut);
      distinct++;
      if (nativeHead(templates.get(base) as ReturnType<typeof templateOf>, cut) !== null) taken++;
    }
    // Enough mutants stay relayable for the comparison to mean something.
    assert.ok(taken > 300, `only ${taken} of ${distinct} mutants taken`);
    t.diagnostic(`seed ${FUZZ_SEED}: ${distinct} distinct mutants, ${taken} taken and compared`);
  });
});

/** The native relay's view of a response head, checked against JavaScript's. */
function nativeResponse(text: string, method: string, closing: boolean) {
  const native = lib.responseHead(rules, bytes(text), method, closing);
  if (native === null) return null;
  const where = `${method} ${closing} ${JSON.stringify(text)}`;
  const parsed = parseResponseHead(text, method);
  assert.ok(parsed, `JavaScript refuses what the native relay took: ${where}`);
  assert.ok(parsed.status >= 200, where);
  const kind = parsed.body.kind;
  assert.equal(native.framing, kind, where);
  if (parsed.body.kind === 'length') assert.equal(native.length, parsed.body.bytes, where);
  assert.equal(native.close, parsed.close, where);
  assert.equal(native.head.toString('latin1'), responseText(parsed, closing), where);
  return native;
}

describe('native relay: response heads', () => {
  it('filters and frames responses as app-relay.ts does', () => {
    const ok = head(
      'HTTP/1.1 200 OK',
      'Content-Length: 5',
      'Set-Cookie: snapvm_session=planted',
      'Set-Cookie: theirs=1',
      'set-cookie:  SNAPVM_app_x=planted',
      'Keep-Alive: timeout=5',
      'Connection: keep-alive',
      'X-A:  b ',
    );
    const res = nativeResponse(ok, 'GET', false);
    assert.equal(
      res?.head.toString('latin1'),
      head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Set-Cookie: theirs=1', 'X-A: b'),
    );
    assert.equal(res?.framing, 'length');
    assert.equal(res?.length, 5);
    const chunked = nativeResponse(
      head('HTTP/1.1 404 Not Found', 'Transfer-Encoding: chunked', 'Connection: close'),
      'GET',
      true,
    );
    assert.equal(chunked?.framing, 'chunked');
    assert.equal(chunked?.close, true);
    assert.match(chunked?.head.toString('latin1') ?? '', /\r\nConnection: close\r\n\r\n$/);
    assert.equal(
      nativeResponse(head('HTTP/1.1 200 OK', 'Content-Length: 9'), 'HEAD', false)?.framing,
      'none',
    );
    assert.equal(nativeResponse(head('HTTP/1.1 204 No Content'), 'GET', false)?.framing, 'none');
    assert.equal(
      nativeResponse(head('HTTP/1.1 304 Not Modified', 'ETag: "1"'), 'GET', false)?.framing,
      'none',
    );
    assert.equal(
      nativeResponse(head('HTTP/1.1 200'), 'HEAD', false)?.head.toString('latin1'),
      'HTTP/1.1 200 \r\n\r\n',
    );
  });

  it('hands back what app-relay.ts must read itself', () => {
    const cases: [string, string][] = [
      ['an interim response', head('HTTP/1.1 103 Early Hints', 'Link: </a>')],
      ['HTTP/1.0', head('HTTP/1.0 200 OK', 'Content-Length: 1')],
      ['no length (until close)', head('HTTP/1.1 200 OK', 'Content-Type: text/plain')],
      [
        'a length and chunks',
        head('HTTP/1.1 200 OK', 'Content-Length: 3', 'Transfer-Encoding: chunked'),
      ],
      ['two lengths', head('HTTP/1.1 200 OK', 'Content-Length: 3', 'Content-Length: 3')],
      ['a coding other than chunked', head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked')],
      [
        'Connection naming a header',
        head('HTTP/1.1 200 OK', 'Connection: X-P', 'Content-Length: 0'),
      ],
      ['a tab after the length', head('HTTP/1.1 200 OK', 'Content-Length: 3\t')],
      ['garbage', head('NOT HTTP AT ALL')],
      ['a 101', head('HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket')],
    ];
    for (const [what, text] of cases)
      assert.equal(lib.responseHead(rules, bytes(text), 'GET', false), null, what);
  });

  it('fuzz: mutated responses the native relay takes, JavaScript frames and filters the same', (t) => {
    const random = mulberry32(FUZZ_SEED ^ 0x5eed);
    const pick = pickWith(random);
    const bases = [
      head(
        'HTTP/1.1 200 OK',
        'Content-Length: 12',
        'Set-Cookie: snapvm_session=x',
        'Set-Cookie: a=1',
        'Keep-Alive: 5',
      ),
      head('HTTP/1.1 404 Not Found', 'Transfer-Encoding: chunked', 'Content-Type: text/plain'),
      head('HTTP/1.1 204 No Content', 'X-B: c'),
      head('HTTP/1.1 200 OK', 'Connection: close', 'Content-Length: 0', 'Date: now'),
    ];
    const alphabet = [
      ...'\r\n \t:,;=-aAcCkK0159_\x00\x7f\x80\xff',
      '\r\n',
      '\r\nContent-Length: 3',
      '\r\nTransfer-Encoding: chunked',
      '\r\nConnection: close',
      '\r\nConnection: keep-alive',
      '\r\nConnection: X-B',
      '\r\nSet-Cookie: snapvm_app_1=x',
      '\r\nUpgrade: h2c',
      '\r\nProxy-Authenticate: Basic',
      'HTTP/1.0',
      '304',
    ];
    let taken = 0;
    const seen = new Set<string>();
    for (let i = 0; i < 6000; i++) {
      let text = pick(bases);
      for (let r = 1 + Math.floor(random() * 3); r > 0; r--)
        text = mutateHead(random, text, alphabet);
      const end = headEnd(bytes(text));
      if (end < 0) continue;
      const cut = text.slice(0, end);
      const method = random() < 0.2 ? 'HEAD' : 'GET';
      const closing = random() < 0.3;
      if (seen.has(cut + method + closing)) continue;
      seen.add(cut + method + closing);
      if (nativeResponse(cut, method, closing)) taken++;
    }
    assert.ok(taken > 400, `only ${taken} mutants taken`);
    t.diagnostic(`seed ${FUZZ_SEED}: ${seen.size} distinct mutants, ${taken} taken and compared`);
  });
});

describe('native relay: chunked bodies', () => {
  /** Both scanners over the same pieces: the bytes they take and whether the body ended. */
  const compare = (pieces: Buffer[], where: string) => {
    const scanner = new ChunkedScanner();
    let js = 0;
    for (const piece of pieces) {
      if (scanner.done) break;
      const took = scanner.push(piece);
      if (took < 0) {
        js = -1;
        break;
      }
      js += took;
    }
    const native = lib.scanChunked(pieces);
    assert.deepEqual(native, { bytes: js, done: js >= 0 && scanner.done }, where);
    return native;
  };
  const split = (random: () => number, data: Buffer): Buffer[] => {
    const pieces: Buffer[] = [];
    for (let at = 0; at < data.length; ) {
      const n = 1 + Math.floor(random() * 12);
      pieces.push(data.subarray(at, at + n));
      at += n;
    }
    return pieces;
  };

  it('ends a body where ChunkedScanner does, in any pieces, and refuses what it refuses', () => {
    const random = mulberry32(FUZZ_SEED ^ 0xc4a1);
    const body =
      '5;ext=1\r\nhello\r\n6;name="quoted \\" value";flag\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Sum: 42\r\n\r\n';
    const next = 'HTTP/1.1 200 OK\r\n\r\n';
    for (let i = 0; i < 50; i++) {
      const result = compare(split(random, bytes(body + next)), `split ${i}`);
      assert.deepEqual(result, { bytes: body.length, done: true });
    }
    for (const bad of [
      'g\r\n',
      '5\r\nhelloX\r\n',
      '5 \r\nhello\r\n',
      '123456789\r\n',
      '0\r\nContent-Length: 1\r\n\r\n',
      '0\r\nTransfer-Encoding: chunked\r\n\r\n',
      '5;=x\r\n',
      `${'1;a=b'.repeat(1000)}\r\n`,
    ])
      assert.equal(compare([bytes(bad)], bad).bytes, -1, bad);
  });

  it('fuzz: mutated chunked bodies, taken and refused alike', (t) => {
    const random = mulberry32(FUZZ_SEED ^ 0xb0d1e5);
    const bases = [
      '5\r\nhello\r\n0\r\n\r\n',
      '3;a=b\r\nabc\r\n1;c="d"\r\nx\r\n0\r\nT: v\r\n\r\n',
      `ff\r\n${'z'.repeat(255)}\r\n0\r\n\r\n`,
    ];
    const alphabet = [...'0123456789abcdefABCDEFG\r\n;="\\ \t:xT', '\r\n', '0\r\n\r\n'];
    let ended = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      let body = pickWith(random)(bases);
      for (let r = 1 + Math.floor(random() * 2); r > 0; r--) {
        const at = Math.floor(random() * body.length);
        const ch = pickWith(random)(alphabet);
        body =
          random() < 0.5
            ? body.slice(0, at) + ch + body.slice(at + 1)
            : body.slice(0, at) + ch + body.slice(at);
      }
      const result = compare(
        split(random, bytes(`${body}GET / HTTP/1.1\r\n\r\n`)),
        JSON.stringify(body),
      );
      if (result.done) ended++;
      if (result.bytes < 0) refused++;
    }
    assert.ok(ended > 300 && refused > 300, `${ended} ended, ${refused} refused`);
    t.diagnostic(`seed ${FUZZ_SEED}: ${ended} bodies ended, ${refused} refused, alike`);
  });
});
