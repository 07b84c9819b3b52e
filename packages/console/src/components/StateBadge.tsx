import type { MachineState } from '../lib/api.js';
import { TRANSITIONAL_STATES } from '../lib/api.js';

const TONE: Record<MachineState, string> = {
  creating: 'busy',
  starting: 'busy',
  started: 'good',
  suspended: 'idle',
  stopping: 'busy',
  stopped: 'idle',
  destroying: 'busy',
  destroyed: 'idle',
  failed: 'bad',
};

export function StateBadge({ state }: { state: MachineState }) {
  const transitional = TRANSITIONAL_STATES.has(state);
  return (
    <span className={`badge badge-${TONE[state] ?? 'idle'}`} data-state={state}>
      {transitional ? <span className="spinner spinner-small" aria-hidden="true" /> : null}
      {state}
    </span>
  );
}
