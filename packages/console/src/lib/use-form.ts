import { type ChangeEvent, type FormEvent, useCallback, useState } from 'react';
import { type FormErrors, formErrorsFrom } from './api-client.js';

type Values<F extends string> = Record<F, string>;
export type Checks<F extends string> = Partial<
  Record<F, (value: string, values: Values<F>) => string | null>
>;

/**
 * State for a small form: values, errors per field (from local checks as you type and from
 * the server after submit) and a busy flag that blocks double submits.
 */
export function useForm<F extends string>(initial: Values<F>, checks: Checks<F> = {}) {
  const [values, setValues] = useState<Values<F>>(initial);
  const [errors, setErrors] = useState<FormErrors>({ fields: {}, form: null });
  const [touched, setTouched] = useState<Partial<Record<F, boolean>>>({});
  const [busy, setBusy] = useState(false);
  const fields = Object.keys(initial) as F[];

  const localError = useCallback(
    (field: F, all: Values<F>) => checks[field]?.(all[field], all) ?? null,
    [checks],
  );

  const setValue = (field: F, value: string) => {
    setValues((previous) => ({ ...previous, [field]: value }));
    setTouched((previous) => ({ ...previous, [field]: true }));
    setErrors((previous) => {
      const rest = { ...previous.fields };
      delete rest[field];
      return { fields: rest, form: null };
    });
  };

  const bind = (field: F) => ({
    name: field,
    value: values[field],
    onChange: (event: ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
      setValue(field, event.target.value),
  });

  /** The error to show for a field: the server's, else the live check once it was typed in. */
  const errorFor = (field: F): string | null =>
    errors.fields[field] ??
    (touched[field] && values[field] !== '' ? localError(field, values) : null);

  const handleSubmit =
    (action: (values: Values<F>) => Promise<void>) => async (event: FormEvent) => {
      event.preventDefault();
      if (busy) return;
      const found: Record<string, string> = {};
      for (const field of fields) {
        const problem = localError(field, values);
        if (problem) found[field] = problem;
      }
      if (Object.keys(found).length > 0) {
        setErrors({ fields: found, form: null });
        focusField(Object.keys(found)[0] as string);
        return;
      }
      setBusy(true);
      setErrors({ fields: {}, form: null });
      try {
        await action(values);
      } catch (error) {
        const mapped = formErrorsFrom(error, fields);
        setErrors(mapped);
        const first = Object.keys(mapped.fields)[0];
        if (first) focusField(first);
      } finally {
        setBusy(false);
      }
    };

  return {
    values,
    setValue,
    bind,
    errorFor,
    formError: errors.form,
    busy,
    handleSubmit,
    setValues,
  };
}

export type Form<F extends string> = ReturnType<typeof useForm<F>>;

function focusField(name: string): void {
  const element = document.querySelector<HTMLElement>(`[name="${CSS.escape(name)}"]`);
  element?.focus();
}
