import { useEffect, useState } from 'react';
import { describeActivity } from '../lib/activity.js';
import type { Machine } from '../lib/api.js';

/**
 * Why the machine is awake and when it will idle. The page's polling brings new activity;
 * the clock here only moves the countdown and "checked … ago" between polls.
 */
export function MachineActivity({ machine }: { machine: Machine }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const summary = describeActivity(machine, now);
  return (
    <section
      className={`card activity activity-${summary.tone}`}
      aria-label="Activity"
      data-tone={summary.tone}
      data-busy={machine.activity?.busy ? 'true' : 'false'}
    >
      <span className="activity-dot" aria-hidden="true" />
      <div className="activity-text">
        <p className="activity-headline">
          <strong>{summary.headline}</strong>
          {summary.next ? <span className="activity-next"> · {summary.next}</span> : null}
        </p>
        {summary.freshness ? <p className="activity-fresh muted">{summary.freshness}</p> : null}
      </div>
    </section>
  );
}
