import { createHash, randomBytes } from 'node:crypto';

/** A new random bearer secret; the prefix tells a leaked secret's kind at a glance. */
export function generateSecret(prefix: 'snapvm_tok' | 'snapvm_ses' | 'snapvm_inv'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/**
 * Secrets are stored only as this hash. They carry 256 random bits, so a fast hash is
 * enough (a slow one is for guessable passwords) and keeps the per-request look-up cheap.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
