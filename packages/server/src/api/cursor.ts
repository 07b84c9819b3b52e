import { ValidationError } from '../errors.js';

// Cursors are opaque to clients: base64url of the sort key of the last item returned.

export function encodeCursor(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string, length: number): string[] {
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parts) &&
      parts.length === length &&
      parts.every((p) => typeof p === 'string' && p.length <= 100)
    )
      return parts as string[];
  } catch {}
  throw new ValidationError('querystring.cursor', 'is not a cursor returned by this API');
}
