import type { MachineEvent, Page } from './api.js';
import { userName } from './format.js';

// A machine event in plain words. The reconciler records a cause on every event: `created`,
// `api` (someone asked), `idle` (the idle monitor), `wake` (a terminal, the machine URL or an
// exec needed it); failures replace it with "failed: …", and a sweep that found the host
// ahead of the database appends "; adopted: …".

export type CauseKind = 'created' | 'user' | 'idle' | 'wake' | 'failed' | 'other';

export interface EventWords {
  /** "Stop requested", "Woken up", or for observed changes null (the states say it). */
  summary: string | null;
  cause: { kind: CauseKind; label: string; title: string };
  /** "by Tess", "for Tess", or null when no person was involved. */
  who: string | null;
  /** A failure message or what a sweep found on the host. */
  detail: string | null;
}

const VERBS: Record<string, string> = {
  started: 'Start',
  stopped: 'Stop',
  suspended: 'Suspend',
  destroyed: 'Destroy',
};

const CAUSES: Record<Exclude<CauseKind, 'other'>, { label: string; title: string }> = {
  created: { label: 'created', title: 'The machine was created' },
  user: { label: 'user', title: 'Someone asked for it (console, CLI or API)' },
  idle: { label: 'idle', title: 'Nothing used the machine for its idle period' },
  wake: { label: 'wake', title: 'A terminal, the machine URL or a command needed it' },
  failed: { label: 'failed', title: 'A step failed; Start or Stop tries again' },
};

export function describeEvent(event: MachineEvent): EventWords {
  const [cause = '', ...notes] = event.reason.split('; ');
  const adopted = notes.find((note) => note.startsWith('adopted: '));
  const kind = causeKind(cause);
  const who = event.actor ? `${kind === 'wake' ? 'for' : 'by'} ${userName(event.actor)}` : null;
  let detail: string | null = null;
  if (kind === 'failed') detail = cause.slice('failed: '.length);
  else if (adopted) detail = `Recovered: ${adopted.slice('adopted: '.length)}`;
  return {
    summary: event.kind === 'desired' ? desiredSummary(kind, event.to) : null,
    cause:
      kind === 'other'
        ? { kind, label: cause || 'unknown', title: event.reason }
        : { kind, ...CAUSES[kind] },
    who,
    detail,
  };
}

function causeKind(cause: string): CauseKind {
  if (cause === 'created') return 'created';
  if (cause === 'api') return 'user';
  if (cause === 'idle') return 'idle';
  if (cause === 'wake') return 'wake';
  if (cause.startsWith('failed: ')) return 'failed';
  return 'other';
}

function desiredSummary(kind: CauseKind, to: string): string {
  const verb = VERBS[to] ?? `Go to ${to}`;
  if (kind === 'created') return 'Created';
  if (kind === 'wake') return 'Woken up';
  if (kind === 'idle') return `${verb} after being idle`;
  return `${verb} requested`;
}

/** A machine's events as read so far, oldest first, as the API pages them. */
export interface EventLog {
  events: MachineEvent[];
  /** Where the last page starts: a refresh re-reads from there, not from the first event. */
  tail: { cursor: string | null; index: number };
}

/**
 * Reads the events that are new since `previous` (all of them the first time), following
 * the cursors to the newest page. The last page is read again each time because the API
 * only hands out a cursor when more follow.
 */
export async function readEventLog(
  fetchPage: (cursor: string | null) => Promise<Page<MachineEvent>>,
  previous: EventLog | null,
): Promise<EventLog> {
  let tail = previous?.tail ?? { cursor: null, index: 0 };
  const events = previous ? previous.events.slice(0, tail.index) : [];
  let cursor = tail.cursor;
  for (;;) {
    const page = await fetchPage(cursor);
    tail = { cursor, index: events.length };
    events.push(...page.items);
    if (!page.nextCursor) return { events, tail };
    cursor = page.nextCursor;
  }
}
