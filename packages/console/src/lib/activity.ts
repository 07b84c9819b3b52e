import type { Machine } from './api.js';
import { formatAge } from './format.js';

// Why a machine is awake and what idling will do to it next, in plain words, from the
// `activity` the machine API reports (the idle monitor's last look at the machine's agent).

export type ActivityTone = 'awake' | 'asleep' | 'changing' | 'failed';

export interface ActivitySummary {
  tone: ActivityTone;
  /** "Awake: 1 terminal attached" / "Suspended — wakes when you open a terminal or its URL" */
  headline: string;
  /** What happens next, e.g. "will suspend in 4 min if idle". */
  next: string | null;
  /** How fresh the reasons are, e.g. "checked 3 s ago · last active 2 min ago". */
  freshness: string | null;
}

const REASON_WORDS: Array<[RegExp, (count: number) => string]> = [
  [/^(\d+) terminal client\(s\) attached$/, (n) => `${n} ${plural(n, 'terminal')} attached`],
  [/^(\d+) exec\(s\) running$/, (n) => `${n} ${plural(n, 'command')} running`],
  [
    /^(\d+) proxied connection\(s\) open$/,
    (n) => `${n} open ${plural(n, 'connection')} to its URL`,
  ],
];

function plural(count: number, word: string): string {
  return count === 1 ? word : `${word}s`;
}

/** The agent's "1 terminal client(s) attached" as "1 terminal attached"; unknown ones as sent. */
export function reasonInWords(reason: string): string {
  for (const [pattern, words] of REASON_WORDS) {
    const match = pattern.exec(reason);
    if (match) return words(Number(match[1]));
  }
  return reason;
}

/** "in 45 s", "in 4 min" (whole minutes, rounded up), "in 2 h 5 min"; "any moment now" when due. */
export function countdown(ms: number): string {
  if (ms <= 0) return 'any moment now';
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `in ${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `in ${hours} h ${rest} min` : `in ${hours} h`;
}

function periodWords(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** While something keeps it busy there is no deadline yet: say what the first idle step is. */
function afterBusy(idle: Machine['idle']): string {
  if (idle.suspendAfterSeconds)
    return `will suspend ${periodWords(idle.suspendAfterSeconds)} after that ends`;
  if (idle.stopAfterSeconds)
    return `will stop ${periodWords(idle.stopAfterSeconds)} after that ends`;
  return 'idling is off: it stays awake until you suspend or stop it';
}

export function describeActivity(machine: Machine, now = Date.now()): ActivitySummary {
  const activity = machine.activity;
  const nextIdle = activity?.nextIdle ?? null;
  const until = (at: string) => countdown(Date.parse(at) - now);
  switch (machine.state) {
    case 'started': {
      const freshness = activity ? freshnessWords(activity, now) : null;
      if (activity?.busy && activity.reasons.length > 0) {
        return {
          tone: 'awake',
          headline: `Awake: ${activity.reasons.map(reasonInWords).join(', ')}`,
          next: afterBusy(machine.idle),
          freshness,
        };
      }
      if (nextIdle) {
        return {
          tone: 'awake',
          headline: 'Awake: nothing attached or running',
          next: `will ${nextIdle.action} ${until(nextIdle.at)} if idle`,
          freshness,
        };
      }
      const off =
        machine.idle.suspendAfterSeconds === null && machine.idle.stopAfterSeconds === null;
      return {
        tone: 'awake',
        headline: activity?.checkedAt ? 'Awake: nothing attached or running' : 'Awake',
        next: off ? 'idling is off: it stays awake until you suspend or stop it' : null,
        freshness,
      };
    }
    case 'suspended':
      return {
        tone: 'asleep',
        headline: 'Suspended — wakes when you open a terminal or its URL',
        next:
          nextIdle?.action === 'stop'
            ? `will stop ${until(nextIdle.at)} unless something wakes it`
            : null,
        freshness: null,
      };
    case 'stopped':
      return {
        tone: 'asleep',
        headline: 'Stopped — starts when you open a terminal or its URL, or press Start',
        next: null,
        freshness: null,
      };
    case 'creating':
      return changing('Being created…');
    case 'starting':
      return changing('Starting…');
    case 'stopping':
      return changing('Stopping…');
    case 'destroying':
      return changing('Being destroyed…');
    case 'destroyed':
      return { tone: 'asleep', headline: 'Destroyed', next: null, freshness: null };
    case 'failed':
      return {
        tone: 'failed',
        headline: 'Failed — the timeline says why; Start or Stop tries again',
        next: null,
        freshness: null,
      };
  }
}

function changing(headline: string): ActivitySummary {
  return { tone: 'changing', headline, next: null, freshness: null };
}

function freshnessWords(activity: NonNullable<Machine['activity']>, now: number): string | null {
  const parts: string[] = [];
  if (activity.checkedAt) parts.push(`checked ${formatAge(activity.checkedAt, now)}`);
  if (activity.lastActiveAt && !activity.busy)
    parts.push(`last active ${formatAge(activity.lastActiveAt, now)}`);
  return parts.length ? parts.join(' · ') : null;
}
