// The machine-URL fast path. Node's HTTP server and client cost about twice what the app
// itself spends on a small request (objects, streams and header maps on both sides), so a
// proxied request cost the host two to three times a direct one (docs/gateway.md). Here a
// connection whose requests are plain HTTP/1.1 for a machine that is up is relayed with
// its own framing (http1.ts): each request head is parsed, authorized (the gateway's cached
// decision), stripped of SnapVM's credentials and sent with X-Forwarded-* to the machine
// over a connection of this client's own; the response head is filtered and the bodies
// pass through as they are.
//
// Everything else — a sign-in redirect, a wake, a refused connection, an upgrade, anything
// odd — is handed over at a request boundary, bytes unread, to Node's HTTP server and the
// full gateway path (app-gateway.ts), which keeps the connection from then on.
//
// Once a request has gone through, the connection may move on to the native relay
// (native-relay.ts), which relays the requests that repeat it at a fraction of the CPU and
// gives the connection back here for anything else.
import type { Socket } from 'node:net';
import {
  type AppGateway,
  forwardedCredential,
  keptResponseHeader,
  type RelayRequest,
  type RelayTarget,
} from './app-gateway.js';
import type { AppHost } from './app-host.js';
import {
  type BodyFraming,
  ChunkedScanner,
  headEnd,
  MAX_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from './http1.js';
import {
  loadRelayAddon,
  NativeRelay,
  type NativeTemplate,
  nativeRules,
  type ReturnedConnection,
} from './native-relay.js';
import { connectDirect } from './tunnel-pool.js';

/** Reusing a connection the app may be about to close races its keep-alive timer (Node: 5 s). */
const UPSTREAM_REUSE_MS = 2_000;
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

export interface AppRelayOptions {
  gateway: () => AppGateway | null;
  /** How long a connection may sit between requests. */
  keepAliveTimeoutMs: number;
  /** Connections are plain TCP, which the native relay can take (not TLS). */
  native: boolean;
}

type HandOver = (socket: Socket) => void;

export class AppRelay {
  private readonly open = new Set<RelayConnection>();
  private readonly native: NativeRelay | null;
  private staleFrom: AppGateway | null = null;
  private relayedHere = 0;

  constructor(private readonly options: AppRelayOptions) {
    const addon = options.native ? loadRelayAddon() : null;
    this.native = addon
      ? new NativeRelay(addon, nativeRules(options.keepAliveTimeoutMs, UPSTREAM_REUSE_MS), (id) =>
          options.gateway()?.touch(id),
        )
      : null;
  }

  /** Requests relayed so far, by this file and by the native relay. */
  relayed(): { relay: number; native: number } {
    return { relay: this.relayedHere, native: this.native?.relayed() ?? 0 };
  }

  /**
   * Takes a new connection: relayed while its requests are for machine hosts and take the
   * fast path, given to `handOver` (Node's HTTP server) otherwise.
   */
  accept(socket: Socket, handOver: HandOver): void {
    const gateway = this.options.gateway();
    if (!gateway) {
      handOver(socket);
      return;
    }
    this.connection(socket, gateway, handOver);
  }

  private connection(socket: Socket, gateway: AppGateway, handOver: HandOver): RelayConnection {
    const connection = new RelayConnection(socket, gateway, this.options.keepAliveTimeoutMs, {
      done: (c) => {
        this.open.delete(c);
      },
      handOver,
      relayed: () => {
        this.relayedHere++;
      },
      toNative: this.native && ((c, template, held) => this.toNative(c, gateway, template, held)),
    });
    this.open.add(connection);
    return connection;
  }

  private toNative(
    c: NativeCandidate,
    gateway: AppGateway,
    template: NativeTemplate,
    held: { target: RelayTarget; handOver: HandOver },
  ): boolean {
    const native = this.native as NativeRelay;
    // A connection whose requests the native relay would not take stays here: it would only
    // come straight back, at the cost of new sockets each time.
    if (!native.accepts(template, c.head)) return false;
    if (this.staleFrom !== gateway) {
      // Decisions the native relay repeats end when the gateway's would (app-gateway.ts).
      this.staleFrom = gateway;
      gateway.onStale((machineId) => native.expire(machineId));
    }
    return native.adopt(c.client, c.upstream, template, c.usedAt, {
      target: held.target,
      onReturn: (returned) =>
        this.connection(returned.client, gateway, held.handOver).resumeFrom(returned),
    });
  }

  /** The server is closing: connections between requests end now, the others after theirs. */
  closeIdle(): void {
    for (const connection of this.open) connection.closeWhenIdle();
    this.native?.closeIdle();
  }

  closeAll(): void {
    for (const connection of this.open) connection.destroy();
    this.native?.closeAll();
  }

  /**
   * The server has closed (its own connections are done): the native relay's connections
   * end after the requests they have in flight, within `timeoutMs`, and its thread ends.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.native) return;
    await this.native.drain(timeoutMs);
    this.native.stop();
  }
}

interface ConnectionHooks {
  done: (c: RelayConnection) => void;
  handOver: HandOver;
  relayed: () => void;
  /** Gives the connection to the native relay; false when it cannot take it. */
  toNative:
    | ((
        c: NativeCandidate,
        template: NativeTemplate,
        held: { target: RelayTarget; handOver: HandOver },
      ) => boolean)
    | null;
}

/** A connection between requests, with the head of the request it last relayed. */
interface NativeCandidate {
  client: Socket;
  upstream: Socket;
  usedAt: number;
  head: Buffer;
}

interface InFlight {
  method: string;
  /** The head as sent upstream: resent once if a reused connection turns out closed. */
  head: string;
  bodiless: boolean;
  close: boolean;
  release: (() => void) | undefined;
  responded: boolean;
  retried: boolean;
}

type Body = { left: number } | ChunkedScanner;

class RelayConnection {
  private pending: Buffer | null = null;
  private upstream: Socket | null = null;
  private upstreamKey = '';
  private upstreamUsedAt = 0;
  private inFlight: InFlight | null = null;
  private requestBody: Body | null = null;
  private responseHead: Buffer | null = null;
  private responseBody: Body | 'close' | null = null;
  private deciding = false;
  /** Where the request in flight went: a resend after a stale connection goes there too. */
  private target: RelayTarget | null = null;
  private lastHostHeader: string | null = null;
  private lastHost: AppHost | null = null;
  /** The last request relayed, with its head as read: the native relay's template. */
  private last: { parsed: Parsed; head: Buffer } | null = null;
  private closing = false;
  private ended = false;
  private done = false;

  constructor(
    private readonly client: Socket,
    private readonly gateway: AppGateway,
    keepAliveTimeoutMs: number,
    private readonly hooks: ConnectionHooks,
  ) {
    client.setNoDelay(true);
    client.on('data', this.onClientData);
    client.on('error', this.destroy);
    client.on('close', this.destroy);
    client.on('timeout', this.onIdle);
    client.on('end', this.onClientEnd);
    client.setTimeout(keepAliveTimeoutMs);
  }

  private readonly onClientEnd = (): void => this.closeWhenIdle();

  /** Quiet for the keep-alive time: closed between requests; proxied responses may take long. */
  private readonly onIdle = (): void => {
    if (!this.inFlight && !this.deciding) this.destroy();
  };

  closeWhenIdle(): void {
    this.closing = true;
    if (!this.inFlight && !this.deciding) this.end();
  }

  /** The last bytes to the client: whatever it sends after them goes nowhere. */
  private end(data?: string): void {
    this.ended = true;
    this.requestBody = null;
    this.pending = null;
    this.dropUpstream();
    if (data === undefined) this.client.end();
    else this.client.end(data);
  }

  readonly destroy = (): void => {
    if (this.done) return;
    this.done = true;
    this.inFlight?.release?.();
    this.upstream?.destroy();
    this.client.destroy();
    this.hooks.done(this);
  };

  // --- client → machine ----------------------------------------------------------------------

  private readonly onClientData = (data: Buffer): void => {
    if (this.ended) return;
    this.pending = this.pending ? Buffer.concat([this.pending, data]) : data;
    if (this.requestBody) this.sendBody();
    else if (!this.inFlight && !this.deciding) this.next();
    else if (this.pending.length > MAX_HEAD_BYTES) this.client.pause();
  };

  /** At a request boundary: the next request, relayed or handed over. */
  private next(): void {
    const pending = this.pending;
    if (!pending || this.done) return;
    const end = headEnd(pending);
    if (end < 0) {
      if (pending.length > MAX_HEAD_BYTES) this.handOver();
      return;
    }
    const head = parseRequestHead(pending.toString('latin1', 0, end));
    const host = head && this.matchHost(head.host);
    const request = head && host && requestView(head, this.client);
    if (!head || !host || !request) {
      this.handOver();
      return;
    }
    const parsed = { head, end, request, host };
    const now = this.gateway.relayTargetNow(request, host);
    if (now !== undefined) {
      this.route(parsed, now);
      return;
    }
    this.deciding = true;
    this.gateway.relayTarget(request, host).then((target) => {
      this.deciding = false;
      if (!this.done) this.route(parsed, target);
    }, this.destroy);
  }

  /** The machine a Host names; a connection's requests nearly always name the same one. */
  private matchHost(hostHeader: string): AppHost | null {
    if (hostHeader !== this.lastHostHeader) {
      this.lastHostHeader = hostHeader;
      this.lastHost = this.gateway.match({ headers: { host: hostHeader } });
    }
    return this.lastHost;
  }

  private route(parsed: Parsed, target: RelayTarget | null): void {
    if (!target) this.handOver();
    else if (this.reusable(target)) this.send(parsed, target);
    else {
      this.deciding = true;
      void this.connect(target).then((connected) => {
        this.deciding = false;
        if (this.done) return;
        if (connected) this.send(parsed, target);
        else this.handOver();
      });
    }
  }

  private send(parsed: Parsed, target: RelayTarget): void {
    const { head, end, request, host } = parsed;
    const text = this.gateway.relayRequestHead(request, host);
    this.target = target;
    this.last = { parsed, head: (this.pending as Buffer).subarray(0, end) };
    this.inFlight = {
      method: head.method,
      head: text,
      bodiless: head.body.kind === 'none',
      close: head.close,
      release: this.gateway.hold(target.id),
      responded: false,
      retried: false,
    };
    this.pending =
      (this.pending as Buffer).length > end ? (this.pending as Buffer).subarray(end) : null;
    this.requestBody = bodyOf(head.body);
    this.sendBody(Buffer.from(text, 'latin1'));
  }

  /** Sends what of the pending bytes belongs to the request body (after `head`, if given). */
  private sendBody(head?: Buffer): void {
    const body = this.requestBody;
    const pending = this.pending;
    const upstream = this.upstream;
    if (!upstream) return;
    let chunk: Buffer | null = null;
    if (body && pending) {
      const taken = take(body, pending);
      if (taken < 0) {
        this.destroy();
        return;
      }
      chunk = taken === pending.length ? pending : pending.subarray(0, taken);
      this.pending = taken === pending.length ? null : pending.subarray(taken);
      if (finished(body)) this.requestBody = null;
    }
    const data = head && chunk ? Buffer.concat([head, chunk]) : (head ?? chunk);
    if (data && data.length > 0 && !upstream.write(data)) {
      this.client.pause();
      upstream.once('drain', () => this.client.resume());
    } else if (this.requestBody) {
      // More of the body is to come: onClientData paused the client when more than a head's
      // worth of bytes arrived while the request was decided (an upload sent right behind its
      // head stalled for good).
      this.client.resume();
    }
  }

  // --- the machine's connection --------------------------------------------------------------

  private reusable(target: RelayTarget): boolean {
    return (
      this.upstream !== null &&
      this.upstreamKey === upstreamKey(target) &&
      Date.now() - this.upstreamUsedAt < UPSTREAM_REUSE_MS
    );
  }

  /** A new connection of this client's to the target; false when it cannot be had. */
  private async connect(target: RelayTarget): Promise<boolean> {
    this.dropUpstream();
    const { connectPort } = target.endpoint;
    if (!connectPort) return false;
    // Refused (nothing listening, or only on loopback) or silent: the full path knows what to
    // answer, and tunnels through the agent where that helps.
    const socket = await new Promise<Socket | null>((resolve) =>
      connectDirect(connectPort, target.port, (err, connected) =>
        resolve(err ? null : (connected ?? null)),
      ),
    );
    if (!socket || this.done) {
      socket?.destroy();
      return false;
    }
    this.attachUpstream(socket, target, Date.now());
    return true;
  }

  private attachUpstream(socket: Socket, target: RelayTarget, usedAt: number): void {
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onUpstreamData(socket, data));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onUpstreamClose(socket));
    this.upstream = socket;
    this.upstreamKey = upstreamKey(target);
    this.upstreamUsedAt = usedAt;
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = null;
    this.upstreamKey = '';
    upstream?.destroy();
  }

  // --- machine → client ----------------------------------------------------------------------

  private onUpstreamData(upstream: Socket, data: Buffer): void {
    if (upstream !== this.upstream) return;
    const request = this.inFlight;
    // Bytes with no request to answer: the app is confused; this connection is done.
    if (!request) {
      this.dropUpstream();
      return;
    }
    // What one read yields goes out in one write: a response head and its body are usually
    // one read, and each write is a trip through the kernel's whole network stack.
    const out: Buffer[] = [];
    let rest: Buffer | null = data;
    let complete = false;
    while (rest && rest.length > 0 && !complete && !this.done) {
      if (this.responseBody) [rest, complete] = this.relayBody(rest, out);
      else [rest, complete] = this.relayHead(rest, request, out);
    }
    if (this.done) return;
    if (out.length > 0) this.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    if (!complete) return;
    // Anything after the response answers no request.
    if (rest && rest.length > 0) this.dropUpstream();
    this.finishResponse();
  }

  /** Reads a response head into `out`; returns the bytes after it and whether it is done. */
  private relayHead(data: Buffer, request: InFlight, out: Buffer[]): [Buffer | null, boolean] {
    const buffered = this.responseHead ? Buffer.concat([this.responseHead, data]) : data;
    const end = headEnd(buffered);
    if (end < 0) {
      if (buffered.length > MAX_RESPONSE_HEAD_BYTES) this.upstreamFailed();
      else this.responseHead = buffered;
      return [null, false];
    }
    this.responseHead = null;
    const head = parseResponseHead(buffered.toString('latin1', 0, end), request.method);
    // Upgrades are handed over before they are sent, so a 101 is as wrong as garbage.
    if (!head || head.status === 101) {
      this.upstreamFailed();
      return [null, false];
    }
    request.responded = true;
    const last = head.status >= 200;
    const closeAfter = last && (head.body.kind === 'close' || request.close || this.closing);
    out.push(Buffer.from(responseText(head, closeAfter), 'latin1'));
    const rest = buffered.subarray(end);
    if (!last) return [rest, false];
    if (head.close) this.upstreamKey = ''; // the app closes it: not reused
    const body = head.body.kind === 'close' ? 'close' : bodyOf(head.body);
    if (!body) return [rest, true];
    this.responseBody = body;
    return [rest, false];
  }

  /** Relays body bytes into `out`; returns what follows the body and whether it is done. */
  private relayBody(data: Buffer, out: Buffer[]): [Buffer | null, boolean] {
    const body = this.responseBody as Body | 'close';
    if (body === 'close') {
      out.push(data);
      return [null, false];
    }
    const taken = take(body, data);
    if (taken < 0) {
      this.destroy();
      return [null, false];
    }
    out.push(taken === data.length ? data : data.subarray(0, taken));
    if (!finished(body)) return [null, false];
    this.responseBody = null;
    return [data.subarray(taken), true];
  }

  private write(data: Buffer): void {
    const upstream = this.upstream;
    if (!this.client.write(data) && upstream) {
      upstream.pause();
      this.client.once('drain', () => upstream.resume());
    }
  }

  private finishResponse(): void {
    const request = this.inFlight as InFlight;
    this.inFlight = null;
    request.release?.();
    this.hooks.relayed();
    this.upstreamUsedAt = Date.now();
    // A response that ends before its request's body leaves the connection's framing unknown.
    if (request.close || this.closing || this.requestBody) {
      this.end();
      return;
    }
    this.client.resume();
    this.next();
    if (!this.inFlight && !this.deciding && !this.done) this.toNative();
  }

  // --- the native relay ----------------------------------------------------------------------

  /** Between requests with nothing buffered: the native relay takes the connection. */
  private toNative(): void {
    const { toNative } = this.hooks;
    const { last, target, upstream, client } = this;
    if (!toNative || !last || !target || !upstream || this.pending) return;
    // The native relay takes bodiless GETs and HEADs only: a POST goes no further than this,
    // before a template is built for it after every request.
    const { method, body } = last.parsed.head;
    if (body.kind !== 'none' || (method !== 'GET' && method !== 'HEAD')) return;
    if (!this.reusable(target)) return;
    if (client.readableLength > 0 || client.writableLength > 0) return;
    if (upstream.readableLength > 0 || upstream.writableLength > 0) return;
    const template = nativeTemplate(this.gateway, last.parsed, target);
    if (!template) return;
    const candidate = { client, upstream, usedAt: this.upstreamUsedAt, head: last.head };
    if (!toNative(candidate, template, { target, handOver: this.hooks.handOver })) return;
    // The native relay has its own descriptors: closing these ends neither connection.
    this.done = true;
    this.detachClient();
    this.upstream = null;
    upstream.removeAllListeners('data').removeAllListeners('close');
    upstream.destroy();
    client.destroy();
    this.hooks.done(this);
  }

  /** Carries on with a connection the native relay gave back, where it stopped. */
  resumeFrom(returned: ReturnedConnection): void {
    const { upstream, target, inFlight } = returned;
    this.target = target;
    this.pending = returned.pending;
    if (upstream) this.attachUpstream(upstream, target, returned.upstreamUsedAt);
    if (!inFlight) {
      this.next();
      return;
    }
    this.inFlight = {
      method: inFlight.method,
      head: inFlight.head,
      bodiless: true,
      close: false,
      release: this.gateway.hold(target.id),
      responded: false,
      retried: false,
    };
    if (!upstream) this.upstreamFailed();
    else if (inFlight.received) this.onUpstreamData(upstream, inFlight.received);
  }

  private onUpstreamClose(upstream: Socket): void {
    if (upstream !== this.upstream) return;
    this.upstream = null;
    const request = this.inFlight;
    if (!request) return;
    if (this.responseBody === 'close') {
      this.responseBody = null;
      this.inFlight = null;
      request.release?.();
      this.end();
      return;
    }
    this.upstreamFailed();
  }

  /** The machine's connection broke or sent nonsense while a request was in flight. */
  private upstreamFailed(): void {
    const request = this.inFlight;
    this.dropUpstream();
    if (!request || this.done) return;
    if (request.responded) {
      this.destroy();
      return;
    }
    // The app closed a kept-alive connection just as the request went out: once more on a new
    // one, when the request has no body to replay.
    if (request.bodiless && !request.retried) {
      request.retried = true;
      void this.resend(request);
      return;
    }
    this.answer502('The machine closed the connection without answering.');
  }

  private async resend(request: InFlight): Promise<void> {
    const connected = this.target !== null && (await this.connect(this.target));
    if (this.done) return;
    if (!connected) return this.answer502('The machine stopped accepting connections.');
    this.upstream?.write(request.head, 'latin1');
  }

  private answer502(message: string): void {
    const body = JSON.stringify({ error: { code: 'upstream_closed', message } });
    this.inFlight?.release?.();
    this.inFlight = null;
    this.end(
      `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  // --- handing over --------------------------------------------------------------------------

  /** Gives the connection, with the bytes not relayed yet, to Node's HTTP server. */
  private handOver(): void {
    if (this.done) return;
    this.done = true;
    this.dropUpstream();
    const client = this.client;
    this.detachClient();
    if (this.pending) client.unshift(this.pending);
    this.pending = null;
    this.hooks.done(this);
    this.hooks.handOver(client);
    client.resume();
  }

  private detachClient(): void {
    const client = this.client;
    client.pause();
    client.off('data', this.onClientData);
    client.off('error', this.destroy);
    client.off('close', this.destroy);
    client.off('timeout', this.onIdle);
    client.off('end', this.onClientEnd);
    client.setTimeout(0);
  }
}

/** A request head read off the client, with where it ends in the pending bytes. */
interface Parsed {
  head: RequestHead;
  end: number;
  request: RequestView;
  host: AppHost;
}

/**
 * The head as the gateway reads it. Its headers are a fixed set of fields, not a map keyed by
 * every name the client sent: that is all authorization and the forwarded fields read.
 */
export interface RequestView extends RelayRequest {
  headers: {
    host: string;
    authorization: string | undefined;
    cookie: string | undefined;
    accept: string | undefined;
    'x-forwarded-for': string | undefined;
    'x-forwarded-proto': string | undefined;
  };
}

/** The head as the gateway's authorization reads it; null with a repeated credential. */
export function requestView(
  head: RequestHead,
  socket: { remoteAddress?: string | undefined },
): RequestView | null {
  const raw = head.headers;
  const lower: string[] = [];
  let authorization: string | undefined;
  let cookie: string | undefined;
  let accept: string | undefined;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    lower.push(name);
    switch (name) {
      case 'authorization':
        if (authorization !== undefined) return null;
        authorization = value;
        break;
      case 'cookie':
        if (cookie !== undefined) return null;
        cookie = value;
        break;
      case 'accept':
        accept ??= value;
        break;
      case 'x-forwarded-for':
        forwardedFor ??= value;
        break;
      case 'x-forwarded-proto':
        forwardedProto ??= value;
        break;
    }
  }
  return {
    method: head.method,
    url: head.target,
    headers: {
      host: head.host,
      authorization,
      cookie,
      accept,
      'x-forwarded-for': forwardedFor,
      'x-forwarded-proto': forwardedProto,
    },
    rawHeaders: raw,
    socket,
    lower,
    connection: head.connection,
  };
}

/**
 * What the native relay needs to repeat `last` (NativeTemplate): null when the gateway's
 * decision is not cached, or when the request read fields the native relay does not take
 * (X-Forwarded-* from a trusted proxy), so its forwarded fields would differ.
 */
function nativeTemplate(
  gateway: AppGateway,
  { request, host }: Parsed,
  target: RelayTarget,
): NativeTemplate | null {
  const { headers } = request;
  if (headers['x-forwarded-for'] !== undefined || headers['x-forwarded-proto'] !== undefined)
    return null;
  const until = gateway.relayValidUntil(request, host, target.id);
  if (until <= Date.now()) return null;
  return templateFor(request, target.id, gateway.relayHeadEnd(request, host), until);
}

/** The template of a request (NativeTemplate), its head's end and validity given. */
export function templateFor(
  request: RequestView,
  machine: string,
  headEnd: string,
  until: number,
): NativeTemplate {
  const { authorization, cookie, host } = request.headers;
  const latin1 = (text: string | null | undefined) =>
    text === null || text === undefined ? null : Buffer.from(text, 'latin1');
  return {
    machine,
    host: Buffer.from(host, 'latin1'),
    authorization: latin1(authorization),
    cookie: latin1(cookie),
    authorizationForward: latin1(
      authorization === undefined ? null : forwardedCredential('authorization', authorization),
    ),
    cookieForward: latin1(cookie === undefined ? null : forwardedCredential('cookie', cookie)),
    suffix: Buffer.from(headEnd, 'latin1'),
    until,
  };
}

function upstreamKey(target: RelayTarget): string {
  return `${target.id}:${target.port}:${target.endpoint.token}`;
}

function bodyOf(framing: BodyFraming): Body | null {
  if (framing.kind === 'length') return { left: framing.bytes };
  if (framing.kind === 'chunked') return new ChunkedScanner();
  return null;
}

/** How many bytes of `data` belong to the body (-1: malformed); advances the body's state. */
function take(body: Body, data: Buffer): number {
  if (body instanceof ChunkedScanner) return body.push(data);
  const n = Math.min(body.left, data.length);
  body.left -= n;
  return n;
}

function finished(body: Body): boolean {
  return body instanceof ChunkedScanner ? body.done : body.left === 0;
}

export function responseText(head: ResponseHead, close: boolean): string {
  // Chunked overrides a Content-Length, which must not go on (RFC 9112 §6.3).
  const dropLength = head.body.kind === 'chunked';
  let text = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  const raw = head.headers;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (dropLength && lower === 'content-length') continue;
    if (keptResponseHeader(lower, value, head.connection, true)) text += `${name}: ${value}\r\n`;
  }
  if (close) text += 'Connection: close\r\n';
  return `${text}\r\n`;
}
