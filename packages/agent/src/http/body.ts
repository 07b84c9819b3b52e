import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export const MAX_JSON_BODY_BYTES = 10 * 1024 * 1024;

/** Reads a JSON request body whatever its declared type (the body is parsed strictly
 * anyway); an empty body reads as `{}` so optional-only bodies work. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BODY_BYTES) {
      throw new HttpError(413, 'body_too_large', `the body exceeds ${MAX_JSON_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON', 'body');
  }
}
