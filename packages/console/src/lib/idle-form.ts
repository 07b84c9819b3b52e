// The idle periods as a person edits them: each tier is "after N minutes", "never" or, on a
// machine, "the org's default". The API speaks seconds, null (never) and "inherit".

import type { IdleSource } from '@snapvm/protocol';
import { formatDuration } from './format.js';

export type IdleTier = 'suspendAfterSeconds' | 'stopAfterSeconds';
export const IDLE_TIERS: readonly IdleTier[] = ['suspendAfterSeconds', 'stopAfterSeconds'];
export const TIER_LABELS: Record<IdleTier, string> = {
  suspendAfterSeconds: 'Suspend when idle',
  stopAfterSeconds: 'Stop when idle',
};

export type TierMode = 'inherit' | 'after' | 'never';
export interface TierDraft {
  mode: TierMode;
  /** Kept while "never" or "inherit" is chosen, so switching back restores it. */
  minutes: string;
}

// The API's bounds: 60 s to 30 days.
const MAX_MINUTES = 30 * 24 * 60;

/** The form's starting point for a tier, from what the API shows. */
export function draftFor(seconds: number | null, source: IdleSource = 'machine'): TierDraft {
  const minutes = seconds === null ? '' : String(Math.round((seconds / 60) * 100) / 100);
  if (source === 'org') return { mode: 'inherit', minutes };
  return { mode: seconds === null ? 'never' : 'after', minutes };
}

/** What to send for a tier, or why the draft cannot be sent. */
export function tierValue(
  draft: TierDraft,
): { value: number | null | 'inherit'; error?: undefined } | { error: string } {
  if (draft.mode === 'inherit') return { value: 'inherit' };
  if (draft.mode === 'never') return { value: null };
  const text = draft.minutes.trim();
  const minutes = Number(text);
  if (!text || !Number.isFinite(minutes)) return { error: 'Enter a number of minutes' };
  if (minutes < 1) return { error: 'At least 1 minute' };
  if (minutes > MAX_MINUTES) return { error: 'At most 30 days (43200 minutes)' };
  return { value: Math.round(minutes * 60) };
}

/** "5 min" or "never". */
export function periodLabel(seconds: number | null): string {
  return seconds === null ? 'never' : formatDuration(seconds);
}
