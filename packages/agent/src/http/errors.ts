import type { ServerResponse } from 'node:http';
import type { z } from 'zod';

/** An error whose status and code reach the client as-is. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);

/** Turns the first zod issue into a 400 that names the offending field. */
export function invalidInput(error: z.ZodError, where = 'body'): HttpError {
  const issue = error.issues[0];
  const path = issue ? [...issue.path] : [];
  // An unknown key is the field to blame, not the object that contains it.
  if (issue?.code === 'unrecognized_keys' && issue.keys[0]) path.push(issue.keys[0]);
  const field = path.length > 0 ? path.join('.') : where;
  return new HttpError(400, 'invalid_input', `${field}: ${issue?.message ?? 'invalid'}`, field);
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where?: string) {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidInput(result.error, where);
  return result.data as z.infer<T>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const error: Record<string, string> = { code: err.code, message: err.message };
  if (err.field) error.field = err.field;
  sendJson(res, err.status, { error });
}
