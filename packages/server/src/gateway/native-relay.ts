// The relay's native data path (native/app-relay.c): a thread that relays the requests of a
// connection app-relay.ts has already authorized, while they repeat the request the gateway
// allowed, and hands the connection back for anything else. This module loads the addon and
// keeps, per connection it holds, what app-relay.ts needs when it comes back.
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { NATIVE_RELAY_RULES, type RelayTarget } from './app-gateway.js';

/** What the relay's next requests must repeat, and what it sends in their place. */
export interface NativeTemplate {
  machine: string;
  host: Buffer;
  authorization: Buffer | null;
  cookie: Buffer | null;
  /** What of those values goes on to the machine; null drops the header. */
  authorizationForward: Buffer | null;
  cookieForward: Buffer | null;
  /** X-Forwarded-For/-Proto/-Host and the blank line that ends the head. */
  suffix: Buffer;
  /** Ms since the epoch: after this, a request goes back to app-relay.ts to be decided. */
  until: number;
}

type Rules = typeof NATIVE_RELAY_RULES & { keepAliveMs: number; upstreamReuseMs: number };
type Handle = object;
type EventCallback = (
  kind: number,
  id: number,
  clientFd: number,
  upstreamFd: number,
  clientBytes: Buffer | null,
  upstreamBytes: Buffer | null,
  method: string | null,
  sent: Buffer | null,
  upstreamUsedAt: number,
) => void;

/** The addon's functions (app-relay.c, js_* at the end). */
export interface RelayAddon {
  create(rules: Rules, onEvent: EventCallback): Handle;
  adopt(
    relay: Handle,
    id: number,
    clientFd: number,
    upstreamFd: number,
    template: NativeTemplate,
    upstreamUsedAt: number,
  ): boolean;
  expire(relay: Handle, machineId: string | null): void;
  closeIdle(relay: Handle): void;
  closeAll(relay: Handle): void;
  stop(relay: Handle): void;
  stats(relay: Handle): number;
  activity(relay: Handle): string[];
  requestHead(rules: Rules, template: NativeTemplate, head: Buffer): Buffer | null;
  responseHead(
    rules: Rules,
    head: Buffer,
    method: string,
    closing: boolean,
  ): {
    head: Buffer;
    framing: 'none' | 'length' | 'chunked';
    length: number;
    close: boolean;
  } | null;
  scanChunked(pieces: Buffer[]): { bytes: number; done: boolean };
}

const HAND_BACK = 1;

let addon: RelayAddon | null | undefined;

/** The addon, built with the server (`npm run build`); null where it cannot load. */
export function loadRelayAddon(): RelayAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('../native/app-relay.node') as RelayAddon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

export function nativeRules(keepAliveMs: number, upstreamReuseMs: number): Rules {
  return { ...NATIVE_RELAY_RULES, keepAliveMs, upstreamReuseMs };
}

/** A connection back from the native relay: app-relay.ts carries on where it stopped. */
export interface ReturnedConnection {
  client: Socket;
  /** The machine's connection; null when it closed (before an answer, if a request is in flight). */
  upstream: Socket | null;
  upstreamUsedAt: number;
  target: RelayTarget;
  /** Client bytes not relayed yet. */
  pending: Buffer | null;
  /** The request sent and not answered yet, with what of the answer came. */
  inFlight: { method: string; head: string; received: Buffer | null } | null;
}

interface Held {
  target: RelayTarget;
  onReturn: (connection: ReturnedConnection) => void;
}

/** How often the machines the native relay served are marked busy for their idle timers. */
const ACTIVITY_MS = 1_000;

export class NativeRelay {
  private readonly handle: Handle;
  private readonly held = new Map<number, Held>();
  private nextId = 1;
  private readonly activity: NodeJS.Timeout;
  private onDrained: (() => void) | null = null;

  /** `touch` marks a machine busy: it had requests (or one still in flight) in the last second. */
  constructor(
    private readonly lib: RelayAddon,
    private readonly rules: Rules,
    touch: (machineId: string) => void,
  ) {
    this.handle = lib.create(rules, this.onEvent);
    this.activity = setInterval(() => {
      for (const id of lib.activity(this.handle)) touch(id);
    }, ACTIVITY_MS).unref();
  }

  /**
   * Gives `client` and `upstream` to the native relay at a request boundary with nothing
   * buffered either way. On true the relay has its own descriptors and the caller destroys
   * its sockets (closing them does not end the connections); `onReturn` gets the connection
   * back if the relay meets what it does not relay.
   */
  adopt(
    client: Socket,
    upstream: Socket,
    template: NativeTemplate,
    upstreamUsedAt: number,
    held: Held,
  ): boolean {
    const clientFd = fdOf(client);
    const upstreamFd = fdOf(upstream);
    if (clientFd < 0 || upstreamFd < 0) return false;
    const id = this.nextId;
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    if (!this.lib.adopt(this.handle, id, clientFd, upstreamFd, template, upstreamUsedAt))
      return false;
    this.held.set(id, held);
    return true;
  }

  /** Whether the relay would take a request with this head under `template`. */
  accepts(template: NativeTemplate, head: Buffer): boolean {
    return this.lib.requestHead(this.rules, template, head) !== null;
  }

  /** Connections relayed for `machineId` (all when null) come back at their next request. */
  expire(machineId: string | null): void {
    this.lib.expire(this.handle, machineId);
  }

  closeIdle(): void {
    this.lib.closeIdle(this.handle);
  }

  closeAll(): void {
    this.lib.closeAll(this.handle);
  }

  /**
   * Resolves once the relay holds no connection (after closeIdle, those with a request in
   * flight end after its answer), or after `timeoutMs`.
   */
  drain(timeoutMs: number): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onDrained = null;
        resolve();
      }, timeoutMs);
      this.onDrained = () => {
        clearTimeout(timer);
        this.onDrained = null;
        resolve();
      };
    });
  }

  stop(): void {
    clearInterval(this.activity);
    this.lib.stop(this.handle);
  }

  /** Requests relayed natively so far. */
  relayed(): number {
    return this.lib.stats(this.handle);
  }

  private readonly onEvent: EventCallback = (
    kind,
    id,
    clientFd,
    upstreamFd,
    clientBytes,
    upstreamBytes,
    method,
    sent,
    upstreamUsedAt,
  ) => {
    const held = this.held.get(id);
    this.held.delete(id);
    if (this.held.size === 0) this.onDrained?.();
    if (kind !== HAND_BACK) return;
    if (!held) {
      for (const fd of [clientFd, upstreamFd]) if (fd >= 0) closeQuietly(fd);
      return;
    }
    let client: Socket;
    let upstream: Socket | null = null;
    try {
      client = new Socket({ fd: clientFd, readable: true, writable: true });
      if (upstreamFd >= 0)
        upstream = new Socket({ fd: upstreamFd, readable: true, writable: true });
    } catch {
      for (const fd of [clientFd, upstreamFd]) if (fd >= 0) closeQuietly(fd);
      return;
    }
    held.onReturn({
      client,
      upstream,
      upstreamUsedAt,
      target: held.target,
      pending: clientBytes,
      inFlight:
        method !== null && sent !== null
          ? { method, head: sent.toString('latin1'), received: upstreamBytes }
          : null,
    });
  };
}

/** A plain TCP socket's descriptor; -1 for anything else (TLS, pipes, tunnels). */
function fdOf(socket: Socket): number {
  if ((socket as { encrypted?: boolean }).encrypted) return -1;
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
