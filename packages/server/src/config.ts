import { homedir } from 'node:os';
import { join } from 'node:path';
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
  const publicUrl = (env.SNAPVM_URL || `http://${shownHost}:${port}`).replace(/\/+$/, '');
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
  };
}
