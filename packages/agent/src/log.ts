// One JSON line per event on stderr. Callers pass fields explicitly; the token and request
// headers are never among them.
type Level = 'debug' | 'info' | 'warn' | 'error';

const quiet = process.env.SNAPVM_AGENT_LOG === 'silent';

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (quiet && level !== 'error') return;
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`,
  );
}
