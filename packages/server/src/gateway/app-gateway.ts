// Machine URLs: requests whose Host is `<machine>--<org>.<apps domain>` never reach the API's
// router; they are authorized here and relayed to the machine's HTTP port (requests over
// pooled connections, straight to the machine's address or through the agent's tunnel,
// tunnel-pool.ts; upgrades through the agent's /v1/proxy/:port), bodies streaming both ways.
// A machine that is not running is woken on the first request (one wake shared by all).
import {
  type Agent,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { AGENT_TOKEN_HEADER, type Role } from '@snapvm/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { readCookie, SESSION_COOKIE } from '../auth/cookies.js';
import { hashSecret } from '../auth/secrets.js';
import type { Database } from '../db/database.js';
import type { AgentEndpoint } from '../runtime/driver.js';
import {
  APP_COOKIE_PREFIX,
  APP_COOKIE_TTL_SECONDS,
  type AppAuth,
  appCookieName,
} from './app-auth.js';
import { type AppHost, parseAppHost } from './app-host.js';
import { messagePage, nothingListeningPage, wakePage } from './app-pages.js';
import type { MachineAgents } from './machine-agents.js';
import { createTunnelPool, TunnelRefusedError, waitForListener } from './tunnel-pool.js';

export interface AppGatewayOptions {
  db: Database;
  agents: MachineAgents;
  auth: AppAuth;
  publicUrl: string;
  appsDomain: string;
  trustProxy: boolean;
  /** The server itself speaks TLS: cookies get `Secure`, X-Forwarded-Proto is https. */
  tls: boolean;
  /** How long a non-navigation request waits for a wake before a 503. */
  holdMs: number;
  /** How long a browser navigation waits before it gets the wake page instead. */
  navigationHoldMs: number;
  log: () => FastifyBaseLogger;
}

interface Target {
  id: string;
  name: string;
  state: string;
  port: number;
  /** A service claims the port: it may simply not be listening yet after a wake. */
  servicePort: boolean;
  allowed: 'yes' | 'login' | 'forbidden' | 'hidden';
}

interface TargetRow {
  id: string;
  name: string;
  observed_state: string;
  owner_id: string | null;
  http_port: number;
  url_access: 'private' | 'org' | 'public';
  role: Role | null;
  service_port: number | null;
}

const CACHE_MS = 3_000;
const REACHED_MS = 1_000;
/** A held request that found nothing listening is tried again after this at most. */
const RETRY_MS = 25;
const RESERVED = '/__snapvm/';
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The header rules of forwardedValue and keptResponseHeader as the native relay
 * (native-relay.ts) is given them: request headers it leaves to app-relay.ts (those this
 * file drops or rewrites, and framing), and response headers that never reach the browser.
 * Authorization and Cookie are rewritten as a template says (NativeTemplate), Connection only
 * ever as "keep-alive".
 */
export const NATIVE_RELAY_RULES = {
  deniedHeaders: [...HOP_BY_HOP, 'content-length', 'expect', AGENT_TOKEN_HEADER],
  deniedPrefix: 'x-forwarded-',
  hopByHop: [...HOP_BY_HOP],
  reservedPrefix: RESERVED,
};

/**
 * What authorization reads of a request: an IncomingMessage, or the relay's parsed head. The
 * relay fills only the headers read here (host, authorization, cookie, accept and, behind a
 * trusted proxy, x-forwarded-for/-proto; requestView in app-relay.ts): a header newly read
 * here must be added there.
 */
export interface GatewayRequest {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
}

/** What the forwarded headers are built from. */
export interface ForwardedRequest extends GatewayRequest {
  rawHeaders: string[];
  socket: { remoteAddress?: string | undefined };
}

/** A machine URL request the relay may send straight to the machine. */
export interface RelayTarget {
  id: string;
  port: number;
  endpoint: AgentEndpoint;
}

/** A request head as the relay parsed it (http1.ts), names lowercased once. */
export interface RelayRequest extends ForwardedRequest {
  method: string;
  url: string;
  /** The header names of `rawHeaders`, lowercased, one per header. */
  lower: readonly string[];
  /** The options of the request's Connection fields, lowercased. */
  connection: readonly string[];
}

class GatewayResponse extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly html: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class AppGateway {
  private readonly identities = new Map<string, { userId: string | null; until: number }>();
  private readonly decisions = new Map<string, { target: Target; until: number }>();
  private readonly pools = new Map<string, Agent>();

  /**
   * Machines this process reached a moment ago. The waker reads the machine's row on every
   * call (another server may have suspended it); at proxy rates that read would cost more
   * than the proxying, so a machine reached within REACHED_MS that this process's
   * reconciler still reports started is used without asking again.
   */
  private readonly reached = new Map<string, { endpoint: AgentEndpoint; until: number }>();
  /** Observed states as the reconciler reports them: fresher than the cached rows. */
  private readonly states = new Map<string, string>();
  private readonly staleListeners: ((machineId: string | null) => void)[] = [];

  constructor(private readonly options: AppGatewayOptions) {
    options.agents.lifecycle?.reconciler.on('state', ({ id, state }) => {
      if (state === 'destroyed') this.states.delete(id);
      else this.states.set(id, state);
      if (state !== 'started') {
        this.reached.delete(id);
        this.dropPools(id);
        for (const listener of this.staleListeners) listener(id);
      }
    });
  }

  /** The machine host a request is for, or null for the main origin. */
  match(req: GatewayRequest): AppHost | null {
    return parseAppHost(req.headers.host, this.options.appsDomain);
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, host: AppHost): Promise<void> {
    res.on('error', () => {});
    try {
      const path = req.url ?? '/';
      const reserved = path.startsWith(RESERVED) ? path.slice(RESERVED.length).split('?')[0] : null;
      if (reserved === 'auth') return await this.redeem(req, res, host);
      const target = await this.authorize(req, host);
      const navigation = isNavigation(req);
      if (reserved === 'status') return this.status(res, target);
      if (reserved !== null)
        throw new GatewayResponse(404, 'not_found', `${RESERVED} paths belong to SnapVM.`);
      const started = Date.now();
      // A resume from suspended takes milliseconds: worth holding even a page load for.
      const quick = !navigation || target.state === 'suspended';
      const endpoint = await this.reach(
        target,
        quick ? this.options.holdMs : this.options.navigationHoldMs,
        res,
      );
      if (!endpoint) {
        if (navigation) return sendHtml(res, 200, wakePage(target.name, target.state), true);
        throw new GatewayResponse(
          503,
          'machine_unavailable',
          'The machine is still waking; retry shortly.',
          null,
          {
            'retry-after': '2',
          },
        );
      }
      const retryUntil =
        bodiless(req) && (target.servicePort || target.state !== 'started')
          ? started + this.options.holdMs
          : 0;
      await this.proxy(req, res, host, target, endpoint, retryUntil);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, host: AppHost) {
    socket.on('error', () => socket.destroy());
    try {
      const target = await this.authorize(req, host);
      const endpoint = await this.reach(target, this.options.holdMs, null);
      if (!endpoint)
        throw new GatewayResponse(
          503,
          'machine_unavailable',
          'The machine is still waking; retry shortly.',
          null,
          {
            'retry-after': '2',
          },
        );
      // No `agent`: with one, Node would open its own TCP connection instead.
      const upstream = request({
        createConnection: () => endpoint.connect(),
        method: req.method ?? 'GET',
        path: `/v1/proxy/${target.port}${req.url ?? '/'}`,
        headers: [...this.forwardHeaders(req, host, 'upgrade'), AGENT_TOKEN_HEADER, endpoint.token],
      });
      upstream.on('upgrade', (res, upstreamSocket, upstreamHead) => {
        if ('setTimeout' in socket)
          (socket as unknown as { setTimeout(ms: number): void }).setTimeout(0);
        socket.write(responseHead(res));
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstreamSocket.write(head);
        upstreamSocket.on('error', () => socket.destroy());
        socket.on('close', () => {
          upstreamSocket.destroy();
          this.options.agents.lifecycle?.idle.touch(target.id);
        });
        upstreamSocket.on('close', () => socket.destroy());
        upstreamSocket.pipe(socket).pipe(upstreamSocket);
      });
      upstream.on('response', (res) => {
        socket.write(responseHead(res));
        res.pipe(socket);
      });
      upstream.on('error', () => {
        writeRaw(socket, 502, {
          code: 'upstream_unreachable',
          message: 'The machine did not answer.',
        });
      });
      upstream.end();
    } catch (err) {
      const failure = asGatewayResponse(err);
      writeRaw(
        socket,
        failure.status,
        { code: failure.code, message: failure.message },
        failure.headers,
      );
    }
  }

  // --- authorization ---------------------------------------------------------------------

  private async authorize(req: GatewayRequest, host: AppHost): Promise<Target> {
    // At proxy rates the checks below (a token hash or a cookie HMAC, the identity cache, the
    // machine's row) cost more than relaying the request: the outcome is kept per host and
    // credential for as long as the identity would be.
    let target = this.cachedDecision(req, host);
    if (!target) {
      const userId = await this.identify(req, host);
      target = decide(await this.lookup(host, userId), userId);
      if (this.decisions.size > 10_000) this.decisions.clear();
      this.decisions.set(decisionKey(req, host), {
        target: { ...target },
        until: Date.now() + CACHE_MS,
      });
      target.state = this.states.get(target.id) ?? target.state;
    }
    if (target.allowed === 'yes') return target;
    if (target.allowed === 'login') {
      if (isNavigation(req))
        throw new GatewayResponse(302, 'login', 'Sign in first.', null, {
          location: `${this.options.publicUrl}/api/v1/app-auth?return=${encodeURIComponent(
            `${this.scheme(req)}://${req.headers.host}${req.url ?? '/'}`,
          )}`,
        });
      throw new GatewayResponse(
        401,
        'unauthorized',
        'Sign in first: send an API token as "Authorization: Bearer …", or open this URL in a signed-in browser.',
      );
    }
    if (target.allowed === 'forbidden')
      throw new GatewayResponse(
        403,
        'forbidden',
        "This machine's URL is private to its owner and the organization's admins.",
      );
    throw new GatewayResponse(404, 'not_found', `There is no machine at ${host.hostname}.`);
  }

  private cachedDecision(req: GatewayRequest, host: AppHost): Target | undefined {
    const cached = this.decision(req, host);
    if (!cached) return undefined;
    const target = { ...cached };
    target.state = this.states.get(target.id) ?? target.state;
    return target;
  }

  /** The cached decision itself, not to be changed; its `state` may be stale. */
  private decision(req: GatewayRequest, host: AppHost): Readonly<Target> | undefined {
    return this.decisionEntry(req, host)?.target;
  }

  private decisionEntry(req: GatewayRequest, host: AppHost) {
    const hit = this.decisions.get(decisionKey(req, host));
    return hit && hit.until > Date.now() ? hit : undefined;
  }

  /** The signed-in user: an API token, else this host's cookie; null when anonymous. */
  private async identify(req: GatewayRequest, host: AppHost): Promise<string | null> {
    const bearer = bearerOf(req);
    if (bearer) {
      const hashed = hashSecret(bearer);
      const user = await this.cached(`t:${hashed}`, () =>
        this.options.db
          .statement<{ user_id: string }>('SELECT user_id FROM snapvm_token_user($1)', [hashed])
          .then((rows) => rows[0]?.user_id ?? null),
      );
      if (!user)
        throw new GatewayResponse(
          401,
          'unauthorized',
          'The API token is not valid (expired or revoked?).',
        );
      return user;
    }
    const cookie = readCookie(req.headers.cookie, appCookieName(host.hostname));
    const identity = cookie ? this.options.auth.readCookie(cookie, host.hostname) : null;
    if (!identity) return null;
    // The cookie holds while the sign-in session it came from does.
    return this.cached(`s:${identity.sessionId}`, () =>
      this.options.db
        .asSystem((tx) =>
          tx.query<{ user_id: string }>(
            `SELECT user_id FROM auth_sessions
              WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()`,
            [identity.sessionId, identity.userId],
          ),
        )
        .then((rows) => rows[0]?.user_id ?? null),
    );
  }

  private async cached(key: string, load: () => Promise<string | null>): Promise<string | null> {
    const hit = this.identities.get(key);
    if (hit && hit.until > Date.now()) return hit.userId;
    const userId = await load();
    if (this.identities.size > 10_000) this.identities.clear();
    this.identities.set(key, { userId, until: Date.now() + CACHE_MS });
    return userId;
  }

  /** Read only when no decision is cached for the host and credential. */
  private async lookup(host: AppHost, userId: string | null): Promise<TargetRow | null> {
    const [row] = await this.options.db.asSystem((tx) =>
      tx.query<TargetRow>(
        `SELECT m.id, m.name, m.observed_state, m.owner_id, m.http_port, m.url_access,
                (SELECT role FROM memberships WHERE org_id = m.org_id AND user_id = $3::uuid) AS role,
                (SELECT (d.definition->>'httpPort')::int FROM service_definitions d
                  WHERE d.machine_id = m.id AND d.definition ? 'httpPort'
                  ORDER BY d.name LIMIT 1) AS service_port
           FROM machines m JOIN orgs o ON o.id = m.org_id
          WHERE o.slug = $1 AND m.name = $2 AND m.observed_state <> 'destroyed'`,
        [host.org, host.machine, userId],
      ),
    );
    return row ?? null;
  }

  /** Settings changed (URL access, port): the next request decides afresh. */
  forget(): void {
    this.decisions.clear();
    for (const listener of this.staleListeners) listener(null);
  }

  /**
   * Tells `listener` when decisions the relay repeats stop holding early: all of them (null,
   * settings changed) or one machine's (it is no longer started).
   */
  onStale(listener: (machineId: string | null) => void): void {
    this.staleListeners.push(listener);
  }

  /**
   * Until when (ms since the epoch) a request repeating `req`'s host and credentials may go
   * to the machine without a look: its cached decision and the machine's reached endpoint
   * both hold till then, as they do for relayTargetNow. 0 when one of them is gone.
   */
  relayValidUntil(req: GatewayRequest, host: AppHost, machineId: string): number {
    const hit = this.decisionEntry(req, host);
    const recent = this.reached.get(machineId);
    if (!hit || !recent || this.states.get(machineId) !== 'started') return 0;
    return Math.min(hit.until, recent.until);
  }

  /**
   * For the relay (app-relay.ts): where a request may go straight through, when it needs
   * nothing but the relay — allowed, not a SnapVM path, and the machine up with a direct
   * route. Null sends it down the full path (handleRequest), which answers everything else.
   * Undefined when that cannot be told without a look (relayTarget): the usual answer comes
   * from the caches without a promise per request.
   */
  relayTargetNow(req: GatewayRequest, host: AppHost): RelayTarget | null | undefined {
    if (req.url?.startsWith(RESERVED)) return null;
    const target = this.decision(req, host);
    if (!target) return undefined;
    if (target.allowed !== 'yes') return null;
    const endpoint = this.recentEndpoint(target);
    if (!endpoint) return undefined;
    return endpoint.connectPort ? { id: target.id, port: target.port, endpoint } : null;
  }

  async relayTarget(req: GatewayRequest, host: AppHost): Promise<RelayTarget | null> {
    if (req.url?.startsWith(RESERVED)) return null;
    let target: Target;
    try {
      target = await this.authorize(req, host);
    } catch {
      return null;
    }
    let endpoint = this.recentEndpoint(target);
    if (!endpoint && target.state === 'started') {
      try {
        endpoint = await this.reach(target, this.options.holdMs, null);
      } catch {
        return null;
      }
    }
    if (!endpoint?.connectPort) return null;
    return { id: target.id, port: target.port, endpoint };
  }

  /** Marks a machine busy now (the native relay's requests, counted each second). */
  touch(machineId: string): void {
    this.options.agents.lifecycle?.idle.touch(machineId);
  }

  /** Marks a relayed request in flight (the machine is busy until the release is called). */
  hold(machineId: string): (() => void) | undefined {
    return this.options.agents.lifecycle?.idle.hold(machineId);
  }

  // --- the login handshake ---------------------------------------------------------------

  private async redeem(req: IncomingMessage, res: ServerResponse, host: AppHost): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://app');
    const identity = await this.options.auth.redeemTicket(
      url.searchParams.get('ticket') ?? '',
      host.hostname,
    );
    if (!identity)
      throw new GatewayResponse(
        400,
        'invalid_ticket',
        'ticket: the sign-in ticket is unknown, used or expired; open the machine URL again.',
      );
    const next = url.searchParams.get('next') ?? '/';
    const safeNext =
      next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
    const attributes = [
      `${appCookieName(host.hostname)}=${this.options.auth.cookieValue(identity, host.hostname)}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Lax',
      `Max-Age=${APP_COOKIE_TTL_SECONDS}`,
    ];
    if (this.options.tls) attributes.push('Secure');
    res.writeHead(302, {
      location: safeNext,
      'set-cookie': attributes.join('; '),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
    res.end();
  }

  private async status(res: ServerResponse, target: Target): Promise<void> {
    const [row] = await this.options.db.asSystem((tx) =>
      tx.query<{ observed_state: string }>('SELECT observed_state FROM machines WHERE id = $1', [
        target.id,
      ]),
    );
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ state: row?.observed_state ?? 'destroyed' }));
  }

  // --- waking and relaying ---------------------------------------------------------------

  /** The agent once the machine is up; null when it is still waking after `holdMs`. */
  private async reach(
    target: Target,
    holdMs: number,
    res: ServerResponse | null,
  ): Promise<AgentEndpoint | null> {
    const agents = this.options.agents;
    const recent = this.recentEndpoint(target);
    if (recent) return recent;
    if (!agents.lifecycle)
      throw new GatewayResponse(
        503,
        'machine_unavailable',
        'This server does not run machines.',
        null,
        {
          'retry-after': '60',
        },
      );
    const hold = new AbortController();
    const timer = setTimeout(() => hold.abort(), holdMs);
    const gone = () => hold.abort();
    res?.once('close', gone);
    // The wake goes on after the wait is given up; its failures reach the next request.
    const wake = agents.lifecycle.waker.wake({ id: target.id }, { signal: hold.signal });
    try {
      const endpoint = await wake;
      await agents.whenSynced(target.id);
      this.states.set(target.id, 'started');
      this.reached.set(target.id, { endpoint, until: Date.now() + REACHED_MS });
      return endpoint;
    } catch (err) {
      if (hold.signal.aborted) return null;
      throw err;
    } finally {
      clearTimeout(timer);
      res?.off('close', gone);
    }
  }

  private recentEndpoint(target: Readonly<Target>): AgentEndpoint | null {
    const recent = this.reached.get(target.id);
    if (!recent || recent.until <= Date.now() || this.states.get(target.id) !== 'started')
      return null;
    this.options.agents.lifecycle?.idle.touch(target.id);
    return recent.endpoint;
  }

  private pool(target: Target, endpoint: AgentEndpoint): Agent {
    const key = `${target.id}:${target.port}:${endpoint.token}`;
    let pool = this.pools.get(key);
    if (!pool) {
      // A new agent (a restart) or a new port: the old tunnels lead nowhere useful.
      this.dropPools(target.id);
      pool = createTunnelPool(endpoint, target.port);
      this.pools.set(key, pool);
    }
    return pool;
  }

  private dropPools(machineId: string): void {
    for (const [key, pool] of this.pools)
      if (key.startsWith(`${machineId}:`)) {
        pool.destroy();
        this.pools.delete(key);
      }
  }

  private proxy(
    req: IncomingMessage,
    res: ServerResponse,
    host: AppHost,
    target: Target,
    endpoint: AgentEndpoint,
    retryUntil: number,
  ): Promise<void> {
    // Connections straight to the app bypass the agent, so its activity report misses them.
    const release = this.options.agents.lifecycle?.idle.hold(target.id);
    return new Promise<void>((resolve) => {
      let upstream: ClientRequest | null = null;
      res.once('close', () => {
        release?.();
        if (!res.writableFinished) upstream?.destroy();
        resolve();
      });
      let retriedReset = false;
      const attempt = () => {
        if (res.destroyed) return;
        const sent = request({
          agent: this.pool(target, endpoint),
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers: this.forwardHeaders(req, host, 'request'),
        });
        upstream = sent;
        sent.on('response', (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders(answer));
          answer.pipe(res);
        });
        sent.on('error', (err) => {
          if (res.headersSent) return res.destroy();
          if (err instanceof TunnelRefusedError && err.status === 502) {
            // Nothing listens on the port (yet: a service may be starting). Tried again as soon
            // as the port accepts a direct connection, or after RETRY_MS (an app on loopback
            // alone is only reached through the agent's tunnel).
            const left = retryUntil - Date.now();
            if (left > 0) {
              void waitForListener(endpoint, target.port, Math.min(RETRY_MS, left)).then(attempt);
              return;
            }
            return this.fail(
              req,
              res,
              new GatewayResponse(
                502,
                'nothing_listening',
                `Nothing is listening on port ${target.port} in machine "${target.name}".`,
                nothingListeningPage(target.name, target.port),
              ),
            );
          }
          // The app closed a kept-alive connection just as this request went out on it.
          if (sent.reusedSocket && !retriedReset && bodiless(req)) {
            retriedReset = true;
            attempt();
            return;
          }
          this.fail(
            req,
            res,
            new GatewayResponse(
              502,
              'agent_unreachable',
              `The machine's agent did not answer (${err.message}).`,
            ),
          );
        });
        // Retries happen only for bodiless requests, whose (empty) body is already read.
        if (bodiless(req)) sent.end();
        else req.pipe(sent);
      };
      attempt();
    });
  }

  scheme(req: GatewayRequest): string {
    if (this.options.tls) return 'https';
    const forwarded = this.options.trustProxy ? req.headers['x-forwarded-proto'] : undefined;
    return typeof forwarded === 'string' && forwarded.split(',')[0]?.trim() === 'https'
      ? 'https'
      : 'http';
  }

  /**
   * What enters the machine: no SnapVM credentials, and where the request really came from.
   * A flat [name, value, …] list built from the raw headers: Node writes such a list as it
   * is, where an object would be validated and re-keyed header by header on every request.
   */
  forwardHeaders(req: ForwardedRequest, host: AppHost, mode: 'request' | 'upgrade') {
    const out: string[] = [];
    const upgrade = mode === 'upgrade';
    // Headers the client's Connection names are hop-by-hop too (RFC 9110 §7.6.1).
    const listed =
      !upgrade && req.headers.connection
        ? req.headers.connection.split(',').map((h) => h.trim().toLowerCase())
        : null;
    const raw = req.rawHeaders;
    let sawHost = false;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      const lower = name.toLowerCase();
      const value = forwardedValue(lower, raw[i + 1] as string, mode, listed);
      if (value === null) continue;
      if (lower === 'host') sawHost = true;
      out.push(name, value);
    }
    if (!sawHost) out.push('Host', host.hostname);
    const [forwardedFor, proto, forwardedHost] = this.forwardedFields(req, host);
    out.push(
      'X-Forwarded-For',
      forwardedFor,
      'X-Forwarded-Proto',
      proto,
      'X-Forwarded-Host',
      forwardedHost,
    );
    return out;
  }

  /**
   * The relay's request head for the machine: the headers forwardHeaders would send, as
   * HTTP/1.1 text (the relay's subset always has its one Host). Built straight into one
   * string, with names lowercased once by the relay: the header list, line array and
   * re-lowercasing cost about 10 µs of CPU a request, a fifth of the relay's own.
   */
  relayRequestHead(req: RelayRequest, host: AppHost): string {
    return relayHeadLines(req) + this.relayHeadEnd(req, host);
  }

  /** The end of the relay's head: X-Forwarded-For, -Proto and -Host, and the blank line. */
  relayHeadEnd(req: ForwardedRequest, host: AppHost): string {
    const [forwardedFor, proto, forwardedHost] = this.forwardedFields(req, host);
    return `X-Forwarded-For: ${forwardedFor}\r\nX-Forwarded-Proto: ${proto}\r\nX-Forwarded-Host: ${forwardedHost}\r\n\r\n`;
  }

  /** X-Forwarded-For, -Proto and -Host as the machine gets them. */
  private forwardedFields(req: ForwardedRequest, host: AppHost): [string, string, string] {
    const remote = req.socket.remoteAddress ?? '';
    const prior = this.options.trustProxy ? req.headers['x-forwarded-for'] : undefined;
    return [
      typeof prior === 'string' && prior ? `${prior}, ${remote}` : remote,
      this.scheme(req),
      req.headers.host ?? host.hostname,
    ];
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const failure = asGatewayResponse(err);
    if (
      failure.status >= 500 &&
      failure.code !== 'nothing_listening' &&
      failure.code !== 'machine_unavailable'
    )
      this.options.log().error({ err }, 'machine URL request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(failure.headers)) res.setHeader(name, value);
    if (failure.status === 302) {
      res.writeHead(302, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (isNavigation(req)) {
      sendHtml(
        res,
        failure.status,
        failure.html ?? messagePage(failure.status, titleOf(failure.status), failure.message),
        false,
      );
      return;
    }
    res.writeHead(failure.status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: { code: failure.code, message: failure.message } }));
  }
}

function decide(row: TargetRow | null, userId: string | null): Target {
  const base = row
    ? {
        id: row.id,
        name: row.name,
        state: row.observed_state,
        // The machine's own setting when changed from the default, else the service that
        // claims a port, else 8080.
        port: row.http_port !== 8080 ? row.http_port : (row.service_port ?? 8080),
        servicePort:
          row.service_port !== null &&
          (row.http_port !== 8080 ? row.http_port : row.service_port) === row.service_port,
      }
    : { id: '', name: '', state: '', port: 0, servicePort: false };
  if (row?.url_access === 'public') return { ...base, allowed: 'yes' };
  if (!userId) return { ...base, allowed: 'login' };
  if (!row?.role) return { ...base, allowed: 'hidden' };
  const allowed =
    row.url_access === 'org' ||
    row.owner_id === userId ||
    row.role === 'owner' ||
    row.role === 'admin';
  return { ...base, allowed: allowed ? 'yes' : 'forbidden' };
}

function bearerOf(req: GatewayRequest): string | undefined {
  return /^Bearer\s+(snapvm_tok_\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** Decisions are cached per host and caller. */
function decisionKey(req: GatewayRequest, host: AppHost): string {
  return `${host.hostname} ${credentialOf(req, host)}`;
}

/** What identifies the caller on this host: the token or the host's cookie, as sent. */
function credentialOf(req: GatewayRequest, host: AppHost): string {
  const bearer = bearerOf(req);
  if (bearer) return `t:${bearer}`;
  return `c:${readCookie(req.headers.cookie, appCookieName(host.hostname)) ?? ''}`;
}

/** The relay's head for the machine up to the X-Forwarded-* fields (relayRequestHead). */
export function relayHeadLines(req: RelayRequest): string {
  let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const value = forwardedValue(
      req.lower[i >> 1] as string,
      raw[i + 1] as string,
      'relay',
      req.connection,
    );
    if (value !== null) text += `${raw[i]}: ${value}\r\n`;
  }
  return text;
}

/** What of a request's Authorization and Cookie values enters the machine (null: dropped). */
export function forwardedCredential(
  lower: 'authorization' | 'cookie',
  value: string,
): string | null {
  return forwardedValue(lower, value, 'relay', null);
}

/**
 * What of one client header (its name lowercased) enters the machine: the value to send on,
 * or null to drop it. `listed` holds the names the request's Connection field makes hop-by-hop.
 */
function forwardedValue(
  lower: string,
  value: string,
  mode: 'request' | 'upgrade' | 'relay',
  listed: readonly string[] | null,
): string | null {
  if (lower === AGENT_TOKEN_HEADER || lower.startsWith('x-forwarded-')) return null;
  if (
    HOP_BY_HOP.has(lower) &&
    !(mode === 'upgrade' && (lower === 'connection' || lower === 'upgrade')) &&
    // The relay passes a chunked body through as it came.
    !(mode === 'relay' && lower === 'transfer-encoding')
  )
    return null;
  if (listed?.includes(lower)) return null;
  if (lower === 'authorization' && /^Bearer\s+snapvm_/i.test(value)) return null;
  if (lower === 'cookie') return stripCookies(value);
  return value;
}

function stripCookies(header: string | undefined): string | null {
  if (!header) return null;
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => {
      const name = part.slice(0, Math.max(0, part.indexOf('='))).trim();
      return part && name !== SESSION_COOKIE && !name.startsWith(APP_COOKIE_PREFIX);
    });
  return kept.length > 0 ? kept.join('; ') : null;
}

function isNavigation(req: GatewayRequest): boolean {
  return (
    (req.method === 'GET' || req.method === 'HEAD') &&
    (req.headers.accept ?? '').includes('text/html')
  );
}

function bodiless(req: IncomingMessage): boolean {
  return (
    (req.method === 'GET' || req.method === 'HEAD') &&
    !req.headers['content-length'] &&
    !req.headers['transfer-encoding']
  );
}

function responseHeaders(res: IncomingMessage): string[] {
  return appResponseHeaders(res.rawHeaders, [], false);
}

/**
 * What of an app's response headers reaches the browser: not hop-by-hop ones (but the
 * relay, which passes a chunked body through as it came, keeps Transfer-Encoding), and no
 * SnapVM cookies: an app cannot set (or clear) those on its host.
 */
export function appResponseHeaders(
  raw: readonly string[],
  connection: readonly string[],
  keepFraming: boolean,
): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (keptResponseHeader(name.toLowerCase(), value, connection, keepFraming))
      out.push(name, value);
  }
  return out;
}

/** Whether one response header (its name lowercased) reaches the browser; see appResponseHeaders. */
export function keptResponseHeader(
  lower: string,
  value: string,
  connection: readonly string[],
  keepFraming: boolean,
): boolean {
  if (HOP_BY_HOP.has(lower) && !(keepFraming && lower === 'transfer-encoding')) return false;
  if (connection.includes(lower)) return false;
  return !(lower === 'set-cookie' && /^\s*snapvm_/i.test(value));
}

function responseHead(res: IncomingMessage): string {
  const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function writeRaw(
  socket: Duplex,
  status: number,
  error: { code: string; message: string },
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${titleOf(status)}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

function sendHtml(res: ServerResponse, status: number, html: string, noStore: boolean): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': noStore ? 'no-store' : 'no-cache',
  });
  res.end(html);
}

function asGatewayResponse(err: unknown): GatewayResponse {
  if (err instanceof GatewayResponse) return err;
  const api = err as {
    statusCode?: number;
    code?: string;
    message?: string;
    headers?: Record<string, string>;
  };
  if (typeof api.statusCode === 'number' && typeof api.code === 'string')
    return new GatewayResponse(
      api.statusCode,
      api.code,
      api.message ?? '',
      null,
      api.headers ?? {},
    );
  return new GatewayResponse(500, 'internal_error', 'The gateway failed; see the server log.');
}

function titleOf(status: number): string {
  return (
    {
      400: 'Bad request',
      401: 'Sign in first',
      403: 'Not allowed',
      404: 'Not found',
      502: 'Bad gateway',
      503: 'Machine unavailable',
    }[status] ?? 'Error'
  );
}
