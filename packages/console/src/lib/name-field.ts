import { NAME_MAX_LENGTH, nameProblem } from '@snapvm/protocol';

// Org slugs and machine names follow one rule set, shared with the server through
// @snapvm/protocol, so what the form accepts is exactly what the API accepts.

/** The message to show under a name field, e.g. "Name must start with a letter", or null. */
export function nameError(label: string, value: string): string | null {
  const problem = nameProblem(value);
  return problem ? `${label} ${problem}` : null;
}

/** Suggests a valid slug for a display name ("Acme Inc." → "acme-inc"), or '' if none. */
export function slugFromName(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, NAME_MAX_LENGTH)
    .replace(/-+$/, '');
  return nameProblem(slug) ? '' : slug;
}
