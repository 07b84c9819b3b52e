import { homedir } from 'node:os';

/** The environment every child starts from: the agent's own minus its configuration, so the
 * token file path and tuning knobs do not leak into users' processes. */
export function buildChildEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('SNAPVM_AGENT_')) env[key] = value;
  }
  env.HOME ??= homedir();
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return { ...env, ...extra };
}
