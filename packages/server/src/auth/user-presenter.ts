import type { User } from '@snapvm/protocol';

/** A user joined from another row; null when the user is gone or not visible to the caller. */
export function presentUser(
  id: string | null,
  email: string | null,
  name: string | null,
): User | null {
  return id && email !== null && name !== null ? { id, email, name } : null;
}
