// A machine's idle periods: each tier is either the machine's own (an override, possibly
// "off") or inherited from its org's default, read at the time it is needed so that changing
// the org default changes every machine that inherits it (docs/lifecycle.md, "Idle").
import { INHERIT, type Machine, type PatchMachineBody } from '@snapvm/protocol';

/**
 * Select list for the periods in effect, from `machines m JOIN orgs o ON o.id = m.org_id`.
 * The idle monitor and the machine API both read these, so they never disagree.
 */
export const EFFECTIVE_IDLE_COLUMNS = `
  CASE WHEN m.idle_suspend_inherit THEN o.idle_suspend_seconds ELSE m.idle_suspend_seconds END
    AS idle_suspend_seconds,
  CASE WHEN m.idle_stop_inherit THEN o.idle_stop_seconds ELSE m.idle_stop_seconds END
    AS idle_stop_seconds,
  m.idle_suspend_inherit, m.idle_stop_inherit`;

export interface EffectiveIdleRow {
  idle_suspend_seconds: number | null;
  idle_stop_seconds: number | null;
  idle_suspend_inherit: boolean;
  idle_stop_inherit: boolean;
}

export function presentIdle(row: EffectiveIdleRow): Machine['idle'] {
  return {
    suspendAfterSeconds: row.idle_suspend_seconds,
    stopAfterSeconds: row.idle_stop_seconds,
    source: {
      suspendAfterSeconds: row.idle_suspend_inherit ? 'org' : 'machine',
      stopAfterSeconds: row.idle_stop_inherit ? 'org' : 'machine',
    },
  };
}

type IdleOverride = NonNullable<PatchMachineBody['idle']>['suspendAfterSeconds'];

/**
 * One tier of a PATCH as SQL parameters: [change it?, own seconds, inherit?]. Left out means
 * unchanged; "inherit" drops the machine's own period.
 */
export function idleOverrideParams(value: IdleOverride): [boolean, number | null, boolean] {
  if (value === undefined) return [false, null, false];
  if (value === INHERIT) return [true, null, true];
  return [true, value, false];
}
