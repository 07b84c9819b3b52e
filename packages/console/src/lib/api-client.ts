// The one place the console talks HTTP to the server. The session travels in a cookie on the
// same origin, so there is no token handling here; every failure becomes an ApiError whose
// message a person can act on.

/** An API failure, from the server's `{"error": {code, message}}` envelope or the network. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field the server blamed, when it said which. */
    readonly field: string | null = null,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** status 0: the request never got an HTTP answer. */
export const NETWORK_ERROR_CODE = 'network_error';

const FALLBACK_MESSAGES: Record<number, string> = {
  400: 'The request was not valid. Check the form and try again.',
  401: 'You are not signed in. Sign in and try again.',
  403: 'You do not have permission to do that. Ask an admin of this organization.',
  404: 'Not found. It may have been deleted, or you may not have access to it.',
  409: 'That conflicts with the current state. Reload and try again.',
  413: 'That is too large to send.',
  422: 'That cannot be done.',
  429: 'Too many attempts. Wait a moment and try again.',
  503: 'The machine could not be woken in time. Try again in a moment.',
};

function fallbackMessage(status: number): string {
  if (FALLBACK_MESSAGES[status]) return FALLBACK_MESSAGES[status];
  if (status >= 500) return 'The server had a problem. Try again in a moment.';
  return `The request failed (HTTP ${status}).`;
}

function readString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

// Servers name the bad field in different places: `field`, `details[]`/`issues[]` with a
// zod-style `path`, or fastify's `body/<field>` prefix in the message. All are accepted so
// the console keeps working as the server's validation layer evolves.
function fieldFromEnvelope(error: Record<string, unknown>): string | null {
  const direct = readString(error.field) ?? readString(error.path);
  if (direct) return lastPathPart(direct);
  for (const key of ['details', 'issues', 'fields']) {
    const list = error[key];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (!item || typeof item !== 'object') continue;
      const entry = item as Record<string, unknown>;
      const path = entry.path ?? entry.field;
      if (Array.isArray(path) && path.length > 0) return String(path[path.length - 1]);
      const named = readString(path);
      if (named) return lastPathPart(named);
    }
  }
  const message = readString(error.message);
  const prefixed = message?.match(FIELD_PREFIX);
  const named = prefixed?.[1] ?? prefixed?.[2];
  return named ? lastPathPart(named) : null;
}

// "email: must be a valid email" (SnapVM's ValidationError) or "body/email must ..." (fastify).
const FIELD_PREFIX = /^(?:(?:body|querystring|params)\/([A-Za-z0-9_.]+)\s|([A-Za-z0-9_.]+):\s)/;

function withoutFieldPrefix(message: string): string {
  return message.replace(FIELD_PREFIX, '').trim();
}

function lastPathPart(path: string): string {
  const parts = path.split(/[./]/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

function parseRetryAfter(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Turns a failed response (status, parsed JSON body or null, Retry-After) into an ApiError. */
export function errorFromResponse(
  status: number,
  body: unknown,
  retryAfter: string | null = null,
): ApiError {
  const retryAfterSeconds = parseRetryAfter(retryAfter);
  const envelope =
    body && typeof body === 'object' && 'error' in body ? (body as { error: unknown }).error : null;
  if (!envelope || typeof envelope !== 'object') {
    return new ApiError(status, `http_${status}`, fallbackMessage(status), null, retryAfterSeconds);
  }
  const error = envelope as Record<string, unknown>;
  let message = readString(error.message) ?? fallbackMessage(status);
  if (status === 429 && retryAfterSeconds !== null && !/\d/.test(message)) {
    message = `${message.replace(/\.?$/, '.')} Try again in ${retryAfterSeconds} s.`;
  }
  return new ApiError(
    status,
    readString(error.code) ?? `http_${status}`,
    message,
    fieldFromEnvelope(error),
    retryAfterSeconds,
  );
}

export interface FormErrors {
  /** Messages to show next to named fields of the form. */
  fields: Record<string, string>;
  /** A message for the form as a whole, when it is not about one of its fields. */
  form: string | null;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Maps any error thrown by a form's submit to messages placed next to its fields. A field is
 * matched when the server named it, or, for 400/409/422, when the error code or the message
 * starts with it (`slug_taken`, "email is already registered"), so the person sees the
 * problem where they typed.
 */
export function formErrorsFrom(error: unknown, formFields: readonly string[]): FormErrors {
  if (!(error instanceof ApiError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { fields: {}, form: message || 'Something went wrong. Try again.' };
  }
  const field = error.field && formFields.includes(error.field) ? error.field : null;
  if (field) {
    const stripped = withoutFieldPrefix(error.message);
    return { fields: { [field]: capitalize(stripped || error.message) }, form: null };
  }
  if ([400, 409, 422].includes(error.status)) {
    // Conflict codes name their field: `email_taken`, `slug_taken`, `name_taken`.
    const fromCode = error.code.split('_')[0] ?? '';
    if (formFields.includes(fromCode)) {
      return { fields: { [fromCode]: error.message }, form: null };
    }
    const lower = error.message.toLowerCase();
    const named = formFields.find(
      (name) =>
        lower.startsWith(`${name.toLowerCase()} `) || lower.startsWith(`${name.toLowerCase()}:`),
    );
    if (named) return { fields: { [named]: error.message }, form: null };
  }
  return { fields: {}, form: error.message };
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

type UnauthorizedListener = () => void;
const unauthorizedListeners = new Set<UnauthorizedListener>();

/** Called when a request finds the session gone, so the app can send the person to sign in. */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/** Sends one JSON request to the API and returns the parsed body (undefined for 204). */
export async function requestJson<T>(method: Method, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers:
        body === undefined
          ? { accept: 'application/json' }
          : {
              accept: 'application/json',
              'content-type': 'application/json',
            },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(
      0,
      NETWORK_ERROR_CODE,
      'Cannot reach the SnapVM server. Check your connection and try again.',
    );
  }
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const error = errorFromResponse(response.status, parsed, response.headers.get('retry-after'));
    // Auth endpoints answer 401 for a wrong password; only elsewhere does it mean the session ended.
    if (response.status === 401 && !path.includes('/auth/')) {
      for (const listener of unauthorizedListeners) listener();
    }
    throw error;
  }
  return (text ? parsed : undefined) as T;
}

/** GETs a streamed text body (e.g. logs that follow); failures map like requestJson's. */
export async function requestStream(path: string, signal: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin', signal });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new ApiError(
      0,
      NETWORK_ERROR_CODE,
      'Cannot reach the SnapVM server. Check your connection and try again.',
    );
  }
  if (!response.ok) {
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    throw errorFromResponse(response.status, parsed, response.headers.get('retry-after'));
  }
  return response;
}
