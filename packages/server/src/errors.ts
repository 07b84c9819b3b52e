// Typed errors thrown by handlers and doers; api/error-handler.ts is the one place that turns
// them (and database errors) into the API's error envelope.

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class ValidationError extends ApiError {
  constructor(field: string, problem: string) {
    super(400, 'invalid_input', `${field}: ${problem}`);
  }
}

export class UnauthorizedError extends ApiError {
  constructor(message = 'Sign in first: no valid session cookie or API token was sent.') {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends ApiError {
  constructor(message: string, code = 'forbidden') {
    super(403, code, message);
  }
}

/** Also used for things that exist but are not visible to the caller: never reveal them. */
export class NotFoundError extends ApiError {
  constructor(what: string) {
    super(404, 'not_found', `${what} was not found.`);
  }
}

export class ConflictError extends ApiError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

export class UnprocessableError extends ApiError {
  constructor(message: string, code = 'unprocessable') {
    super(422, code, message);
  }
}

export class RateLimitedError extends ApiError {
  constructor(retryAfterSeconds: number) {
    super(429, 'rate_limited', `Too many attempts; try again in ${retryAfterSeconds} seconds.`, {
      'retry-after': String(retryAfterSeconds),
    });
  }
}
