import { useEffect, useRef, useState } from 'react';
import { api, type MachineEvent } from '../lib/api.js';
import { formatAge, formatTime } from '../lib/format.js';
import { describeEvent, type EventLog, readEventLog } from '../lib/machine-events.js';
import { ErrorNotice, Loading } from './States.js';

const SHOWN = 20;

/**
 * The machine's events, newest first, with their causes in plain words. The API pages oldest
 * first, so the first load walks every page and later ones re-read only the last page
 * onwards; it reloads whenever the machine's state or desired state moves.
 */
export function MachineTimeline({
  org,
  machine,
  revision,
}: {
  org: string;
  machine: string;
  /** Changes whenever new events may exist (e.g. "started/stopped"). */
  revision: string;
}) {
  const [loaded, setLoaded] = useState<{ key: string; data: EventLog } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [expanded, setExpanded] = useState(false);
  const [generation, setGeneration] = useState(0);
  const key = `${org}/${machine}`;
  const current = useRef<{ key: string; data: EventLog } | null>(null);
  current.current = loaded;

  // biome-ignore lint/correctness/useExhaustiveDependencies: revision and generation trigger reloads
  useEffect(() => {
    let cancelled = false;
    const previous = current.current?.key === key ? current.current.data : null;
    readEventLog((cursor) => api.listMachineEvents(org, machine, cursor), previous).then(
      (data) => {
        if (cancelled) return;
        setLoaded({ key, data });
        setError(null);
      },
      (failure) => {
        if (!cancelled) setError(failure);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [key, revision, generation]);

  const events = loaded?.key === key ? loaded.data.events : null;
  const newestFirst = events ? [...events].reverse() : [];
  const shown = expanded ? newestFirst : newestFirst.slice(0, SHOWN);
  return (
    <section className="card" aria-labelledby="timeline-heading">
      <h2 id="timeline-heading">Timeline</h2>
      {error && !events ? (
        <ErrorNotice error={error} retry={() => setGeneration((value) => value + 1)} />
      ) : !events ? (
        <Loading what="events" />
      ) : events.length === 0 ? (
        <p className="muted">No events yet.</p>
      ) : (
        <>
          <ol className="timeline">
            {shown.map((event) => (
              <TimelineItem key={event.id} event={event} />
            ))}
          </ol>
          {newestFirst.length > shown.length ? (
            <button type="button" className="button button-small" onClick={() => setExpanded(true)}>
              Show {newestFirst.length - shown.length} older
            </button>
          ) : null}
        </>
      )}
    </section>
  );
}

function TimelineItem({ event }: { event: MachineEvent }) {
  const words = describeEvent(event);
  return (
    <li data-kind={event.kind} data-cause={words.cause.kind}>
      <span className="timeline-what">
        {words.summary ?? (
          <>
            {event.from ? `${event.from} → ` : ''}
            <strong>{event.to}</strong>
          </>
        )}
      </span>
      <span className={`chip chip-${words.cause.kind}`} title={words.cause.title}>
        {words.cause.label}
      </span>
      {words.who ? <span className="muted">{words.who}</span> : null}
      <time dateTime={event.at} title={formatTime(event.at)} className="muted">
        {formatAge(event.at)}
      </time>
      {words.detail ? <p className="timeline-detail">{words.detail}</p> : null}
    </li>
  );
}
