import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planIds } from './orgs/plans.js';

export interface Config {
  host: string;
  port: number;
  /** Public base URL of the console and API; also the one origin trusted for cookies. */
  publicUrl: string;
  appsDomain: string;
  dataDir: string;
  databaseUrl: string | null;
  /** Password for the database role the server creates for requests (PostgreSQL only). */
  databaseAppPassword: string | null;
  databasePoolSize: number;
  statementTimeoutMs: number;
  signup: 'open' | 'invite-only';
  defaultPlan: string;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  sessionTtlHours: number;
  invitationTtlHours: number;
  logLevel: string;
  trustProxy: boolean;
  /** Bearer token that /metrics asks for; null: /metrics is off. */
  metricsToken: string | null;
  lifecycle: LifecycleConfig;
  tls: TlsConfig;
  gateway: GatewayConfig;
}

/** HTTPS: certificate and key files, a generated self-signed pair, or plain HTTP. */
export type TlsConfig =
  | { mode: 'off' }
  | { mode: 'self-signed' }
  | { mode: 'files'; certFile: string; keyFile: string };

/** Terminals and machine URLs (docs/gateway.md). */
export interface GatewayConfig {
  /** How long a machine-URL request (not a page load) waits for a wake before a 503. */
  holdMs: number;
  /** How long a page load of a stopped machine waits before it gets the "waking" page. */
  navigationHoldMs: number;
  /** Ping period on terminal WebSockets; a side that misses one ping is dropped. */
  heartbeatMs: number;
  /** Signs machine-host cookies; servers sharing a database must share it. */
  appKey: string | null;
  /** The built web console, served at `/`. */
  consoleDir: string | null;
}

/** The reconciler, the idle monitor and the local runtime (docs/lifecycle.md). */
export interface LifecycleConfig {
  /** Off: machines are records only (nothing runs); tests of the API alone use this. */
  enabled: boolean;
  reconcileIntervalMs: number;
  /** How long a cold or warm wake may take before callers get a 503. */
  wakeTimeoutMs: number;
  /** Defaults for new machines; null = never. Each machine can override them (PATCH). */
  idleSuspendSeconds: number | null;
  idleStopSeconds: number | null;
  idlePollMs: number;
  imageCacheDir: string;
  agentDir: string;
  agentTimeoutMs: number;
  /** Host resources of the local runtime; two servers on one host need different ones. */
  mountDir: string;
  bridge: string;
  vethPrefix: string;
  subnet: string;
  uidBase: number;
  cgroupParent: string;
}

export class ConfigError extends Error {}

function readInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return value;
}

function parseListen(raw: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`SNAPVM_LISTEN must be host:port (e.g. 127.0.0.1:8080), got "${raw}"`);
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

/** Reads the server's configuration from the environment; see docs/configuration.md. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { host, port } = parseListen(env.SNAPVM_LISTEN || '127.0.0.1:8080');
  const shownHost = host === '0.0.0.0' || host === '' || host === '::' ? 'localhost' : host;
  const tls = loadTlsConfig(env);
  const scheme = tls.mode === 'off' ? 'http' : 'https';
  const publicUrl = (env.SNAPVM_URL || `${scheme}://${shownHost}:${port}`).replace(/\/+$/, '');
  try {
    const parsed = new URL(publicUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
  } catch {
    throw new ConfigError(`SNAPVM_URL must be an http(s) URL, got "${publicUrl}"`);
  }
  const signup = env.SNAPVM_SIGNUP || 'open';
  if (signup !== 'open' && signup !== 'invite-only')
    throw new ConfigError(`SNAPVM_SIGNUP must be "open" or "invite-only", got "${signup}"`);
  const defaultPlan = env.SNAPVM_DEFAULT_PLAN || 'team';
  if (!planIds.includes(defaultPlan))
    throw new ConfigError(`SNAPVM_DEFAULT_PLAN must be one of ${planIds.join(', ')}`);
  return {
    host,
    port,
    publicUrl,
    appsDomain: env.SNAPVM_APPS_DOMAIN || 'localhost',
    dataDir: env.SNAPVM_DATA_DIR || join(homedir(), '.snapvm'),
    databaseUrl: env.DATABASE_URL || null,
    databaseAppPassword: env.SNAPVM_DATABASE_APP_PASSWORD || null,
    databasePoolSize: readInteger(env, 'SNAPVM_DATABASE_POOL_SIZE', 10, 1),
    statementTimeoutMs: readInteger(env, 'SNAPVM_STATEMENT_TIMEOUT_MS', 15_000, 100),
    signup,
    defaultPlan,
    bodyLimitBytes: readInteger(env, 'SNAPVM_BODY_LIMIT_BYTES', 1024 * 1024, 1024),
    requestTimeoutMs: readInteger(env, 'SNAPVM_REQUEST_TIMEOUT_MS', 30_000, 1000),
    sessionTtlHours: readInteger(env, 'SNAPVM_SESSION_TTL_HOURS', 24 * 14, 1),
    invitationTtlHours: readInteger(env, 'SNAPVM_INVITATION_TTL_HOURS', 24 * 7, 1),
    logLevel: env.SNAPVM_LOG_LEVEL || 'info',
    trustProxy: env.SNAPVM_TRUST_PROXY === '1' || env.SNAPVM_TRUST_PROXY === 'true',
    metricsToken: loadMetricsToken(env),
    lifecycle: loadLifecycleConfig(env, env.SNAPVM_DATA_DIR || join(homedir(), '.snapvm')),
    tls,
    gateway: {
      holdMs: readInteger(env, 'SNAPVM_GATEWAY_HOLD_MS', 10_000, 0),
      navigationHoldMs: readInteger(env, 'SNAPVM_GATEWAY_PAGE_HOLD_MS', 1_500, 0),
      heartbeatMs: readInteger(env, 'SNAPVM_TERMINAL_HEARTBEAT_MS', 20_000, 100),
      appKey: env.SNAPVM_APP_KEY || null,
      consoleDir:
        env.SNAPVM_CONSOLE_DIR === 'off'
          ? null
          : env.SNAPVM_CONSOLE_DIR ||
            fileURLToPath(new URL('../../console/dist/', import.meta.url)),
    },
  };
}

function loadMetricsToken(env: NodeJS.ProcessEnv): string | null {
  const token = env.SNAPVM_METRICS_TOKEN;
  if (!token) return null;
  if (token.length < 16 || /\s/.test(token))
    throw new ConfigError('SNAPVM_METRICS_TOKEN must be at least 16 characters, without spaces');
  return token;
}

function loadTlsConfig(env: NodeJS.ProcessEnv): TlsConfig {
  const cert = env.SNAPVM_TLS_CERT;
  const key = env.SNAPVM_TLS_KEY;
  if (cert || key) {
    if (!cert || !key)
      throw new ConfigError('SNAPVM_TLS_CERT and SNAPVM_TLS_KEY must be set together');
    return { mode: 'files', certFile: cert, keyFile: key };
  }
  const mode = env.SNAPVM_TLS || 'off';
  if (mode !== 'off' && mode !== 'self-signed')
    throw new ConfigError(
      `SNAPVM_TLS must be "off" or "self-signed" (or set SNAPVM_TLS_CERT/KEY), got "${mode}"`,
    );
  return { mode };
}

function loadLifecycleConfig(env: NodeJS.ProcessEnv, dataDir: string): LifecycleConfig {
  const switchValue = env.SNAPVM_LIFECYCLE || 'on';
  if (switchValue !== 'on' && switchValue !== 'off')
    throw new ConfigError(`SNAPVM_LIFECYCLE must be "on" or "off", got "${switchValue}"`);
  const subnet = env.SNAPVM_MACHINE_SUBNET || '10.77';
  if (!/^\d{1,3}\.\d{1,3}$/.test(subnet))
    throw new ConfigError(
      `SNAPVM_MACHINE_SUBNET must be the first two octets (e.g. 10.77), got "${subnet}"`,
    );
  const bridge = env.SNAPVM_MACHINE_BRIDGE || 'snapvm0';
  const vethPrefix = env.SNAPVM_MACHINE_VETH_PREFIX || 'sv-';
  if (!/^[a-z][a-z0-9-]{0,14}$/.test(bridge) || !/^[a-z][a-z0-9-]{0,9}$/.test(vethPrefix))
    throw new ConfigError(
      'SNAPVM_MACHINE_BRIDGE (at most 15) and SNAPVM_MACHINE_VETH_PREFIX (at most 10) must be lowercase interface names',
    );
  const cgroupParent = env.SNAPVM_CGROUP_PARENT || 'snapvm';
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(cgroupParent))
    throw new ConfigError(`SNAPVM_CGROUP_PARENT must be a plain group name, got "${cgroupParent}"`);
  // 0 turns an idle tier off.
  const idle = (name: string, fallback: number) => readInteger(env, name, fallback, 0) || null;
  return {
    enabled: switchValue === 'on',
    reconcileIntervalMs: readInteger(env, 'SNAPVM_RECONCILE_INTERVAL_MS', 30_000, 100),
    wakeTimeoutMs: readInteger(env, 'SNAPVM_WAKE_TIMEOUT_MS', 30_000, 100),
    idleSuspendSeconds: idle('SNAPVM_IDLE_SUSPEND_SECONDS', 300),
    idleStopSeconds: idle('SNAPVM_IDLE_STOP_SECONDS', 3600),
    idlePollMs: readInteger(env, 'SNAPVM_IDLE_POLL_MS', 10_000, 50),
    imageCacheDir: env.SNAPVM_IMAGE_CACHE || join(dataDir, 'images'),
    agentDir:
      env.SNAPVM_AGENT_DIR || fileURLToPath(new URL('../../agent/dist/bundle/', import.meta.url)),
    agentTimeoutMs: readInteger(env, 'SNAPVM_AGENT_TIMEOUT_MS', 15_000, 100),
    mountDir: env.SNAPVM_MACHINE_MOUNT_DIR || '/run/snapvm/machines',
    bridge,
    vethPrefix,
    subnet,
    uidBase: readInteger(env, 'SNAPVM_MACHINE_UID_BASE', 200_000, 65_536),
    cgroupParent,
  };
}
