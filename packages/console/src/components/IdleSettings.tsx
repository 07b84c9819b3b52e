import { type FormEvent, useId, useState } from 'react';
import {
  IDLE_TIERS,
  type IdleTier,
  periodLabel,
  TIER_LABELS,
  type TierDraft,
  type TierMode,
  tierValue,
} from '../lib/idle-form.js';
import { errorMessage } from './States.js';

export type IdleDrafts = Record<IdleTier, TierDraft>;
export type IdleBody = Record<IdleTier, number | null | 'inherit'>;

/**
 * Edits both idle tiers. With `orgDefaults` (a machine) each tier may also follow the org's
 * default. `initial` is read once: after a save the drafts already are what was saved, and
 * starting over on every poll of the page would throw away what the person is typing.
 */
export function IdleForm({
  initial,
  orgDefaults,
  onSave,
}: {
  initial: IdleDrafts;
  orgDefaults?: Record<IdleTier, number | null> | undefined;
  onSave: (body: IdleBody) => Promise<void>;
}) {
  const [drafts, setDrafts] = useState(initial);
  const [errors, setErrors] = useState<Partial<Record<IdleTier, string>>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found: Partial<Record<IdleTier, string>> = {};
    const body = {} as IdleBody;
    for (const tier of IDLE_TIERS) {
      const result = tierValue(drafts[tier]);
      if (result.error !== undefined) found[tier] = result.error;
      else body[tier] = result.value;
    }
    setErrors(found);
    setSaved(false);
    if (Object.keys(found).length) return;
    setSaving(true);
    setFailure(null);
    try {
      await onSave(body);
      setSaved(true);
    } catch (error) {
      setFailure(errorMessage(error));
    } finally {
      setSaving(false);
    }
  };
  return (
    <form onSubmit={submit} noValidate className="idle-form">
      {IDLE_TIERS.map((tier) => (
        <TierField
          key={tier}
          tier={tier}
          draft={drafts[tier]}
          orgDefault={orgDefaults ? orgDefaults[tier] : undefined}
          error={errors[tier]}
          onChange={(draft) => {
            setSaved(false);
            setDrafts((current) => ({ ...current, [tier]: draft }));
          }}
        />
      ))}
      {failure ? (
        <div className="notice notice-error" role="alert">
          {failure}
        </div>
      ) : null}
      <div className="button-row">
        <button type="submit" className="button button-primary" disabled={saving}>
          {saving ? 'Saving…' : 'Save idle settings'}
        </button>
        {saved ? (
          <span className="muted" role="status">
            Saved
          </span>
        ) : null}
      </div>
    </form>
  );
}

function TierField({
  tier,
  draft,
  orgDefault,
  error,
  onChange,
}: {
  tier: IdleTier;
  draft: TierDraft;
  /** undefined: no org default to follow (the org's own settings). */
  orgDefault: number | null | undefined;
  error: string | undefined;
  onChange: (draft: TierDraft) => void;
}) {
  const id = useId();
  const label = TIER_LABELS[tier];
  return (
    <fieldset className="idle-tier">
      <legend>{label}</legend>
      <select
        aria-label={label}
        value={draft.mode}
        onChange={(event) => onChange({ ...draft, mode: event.target.value as TierMode })}
      >
        {orgDefault !== undefined ? (
          <option value="inherit">Org default ({periodLabel(orgDefault)})</option>
        ) : null}
        <option value="after">After…</option>
        <option value="never">Never</option>
      </select>
      {draft.mode === 'after' ? (
        <span className="idle-minutes">
          <input
            id={`${id}-minutes`}
            type="number"
            inputMode="decimal"
            min={1}
            step="any"
            value={draft.minutes}
            aria-label={`${label}: minutes`}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${id}-error` : undefined}
            onChange={(event) => onChange({ ...draft, minutes: event.target.value })}
          />
          <label htmlFor={`${id}-minutes`}>minutes</label>
        </span>
      ) : null}
      {error ? (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </fieldset>
  );
}
