import { readFileSync } from 'node:fs';

export interface AgentConfig {
  /** Unix socket path, or null when listening on TCP. */
  socketPath: string | null;
  /** host:port for TCP (tests); port 0 picks a free one. */
  listen: { host: string; port: number } | null;
  token: string;
  /**
   * A file descriptor the host writes a line to (or closes) once the machine is ready for
   * services (its network is wired); null when there is no gate.
   */
  startGateFd: number | null;
  stateDir: string;
  maxSessions: number;
  /** Scrollback lines each session's screen model keeps. */
  scrollback: number;
  /** Raw output kept per session for offset resume. */
  ringBytes: number;
  /** How far a session's screen model may lag its PTY before the PTY is paused. */
  modelLagBytes: number;
  /** Scrollback lines sent with a snapshot when the client does not ask for a number. */
  attachHistory: number;
  /** Unsent bytes a terminal client may accumulate before it is dropped. */
  clientQueueBytes: number;
  /** How long an exited session stays listable. */
  exitedRetentionMs: number;
  screenWorkers: number;
  stopGraceMs: number;
  restartBackoffMs: number;
  restartBackoffMaxMs: number;
  logFileBytes: number;
}

export class ConfigError extends Error {}

function readNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new ConfigError(`${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function parseListen(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = at > 0 ? value.slice(0, at).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(value.slice(at + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`SNAPVM_AGENT_LISTEN must be host:port, got ${JSON.stringify(value)}`);
  }
  return { host, port };
}

/** Reads the agent's configuration from its environment (see docs/agent.md). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const socketPath = env.SNAPVM_AGENT_SOCKET || null;
  const listen = env.SNAPVM_AGENT_LISTEN ? parseListen(env.SNAPVM_AGENT_LISTEN) : null;
  if (!socketPath && !listen) {
    throw new ConfigError('set SNAPVM_AGENT_SOCKET (unix socket path) or SNAPVM_AGENT_LISTEN');
  }
  const tokenFile = env.SNAPVM_AGENT_TOKEN_FILE;
  if (!tokenFile) throw new ConfigError('set SNAPVM_AGENT_TOKEN_FILE');
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read SNAPVM_AGENT_TOKEN_FILE: ${(err as Error).message}`);
  }
  if (token.length < 16) throw new ConfigError('the agent token must be at least 16 characters');
  const gate = env.SNAPVM_AGENT_START_GATE;
  const startGateFd = gate ? Number(gate) : null;
  if (startGateFd !== null && !(Number.isInteger(startGateFd) && startGateFd >= 3)) {
    throw new ConfigError(
      `SNAPVM_AGENT_START_GATE must be a file descriptor >= 3, got ${JSON.stringify(gate)}`,
    );
  }
  return {
    socketPath,
    listen: socketPath ? null : listen,
    token,
    startGateFd,
    stateDir: env.SNAPVM_AGENT_STATE_DIR || '/var/lib/snapvm',
    maxSessions: readNumber(env, 'SNAPVM_AGENT_MAX_SESSIONS', 50, 1),
    scrollback: readNumber(env, 'SNAPVM_AGENT_SCROLLBACK', 3000),
    ringBytes: readNumber(env, 'SNAPVM_AGENT_RING_BYTES', 1024 * 1024, 4096),
    modelLagBytes: readNumber(env, 'SNAPVM_AGENT_MODEL_LAG_BYTES', 64 * 1024 * 1024, 65536),
    attachHistory: readNumber(env, 'SNAPVM_AGENT_ATTACH_HISTORY', 1000),
    clientQueueBytes: readNumber(env, 'SNAPVM_AGENT_CLIENT_QUEUE_BYTES', 8 * 1024 * 1024, 1024),
    exitedRetentionMs: readNumber(env, 'SNAPVM_AGENT_EXITED_RETENTION_MS', 60_000),
    screenWorkers: readNumber(env, 'SNAPVM_AGENT_SCREEN_WORKERS', 2, 1),
    stopGraceMs: readNumber(env, 'SNAPVM_AGENT_STOP_GRACE_MS', 10_000),
    restartBackoffMs: readNumber(env, 'SNAPVM_AGENT_RESTART_BACKOFF_MS', 1000, 1),
    restartBackoffMaxMs: readNumber(env, 'SNAPVM_AGENT_RESTART_BACKOFF_MAX_MS', 60_000, 1),
    logFileBytes: readNumber(env, 'SNAPVM_AGENT_LOG_FILE_BYTES', 4 * 1024 * 1024, 1024),
  };
}
