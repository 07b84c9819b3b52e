import { z } from 'zod';

// `--` separates machine and org in `<machine>--<org>.<apps domain>`, so a name may never
// contain it; the 30-character cap keeps the combined host label under DNS's 63.
const NAME_PATTERN = /^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/;

export const NAME_MAX_LENGTH = 30;

/** Why `value` is not a valid org slug or machine name, or null when it is. */
export function nameProblem(value: string): string | null {
  if (value.length === 0) return 'must not be empty';
  if (value.length > NAME_MAX_LENGTH) return `must be at most ${NAME_MAX_LENGTH} characters`;
  if (!/^[a-z0-9-]+$/.test(value)) return 'may contain only lowercase letters, digits and hyphens';
  if (!/^[a-z]/.test(value)) return 'must start with a letter';
  if (!/[a-z0-9]$/.test(value)) return 'must end with a letter or digit';
  if (value.includes('--')) return 'must not contain two hyphens in a row';
  return NAME_PATTERN.test(value) ? null : 'is not a valid name';
}

export const nameSchema = z.string().superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
