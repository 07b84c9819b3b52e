import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { sqlState } from '../db/values.js';
import { ApiError } from '../errors.js';

interface Envelope {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

const FASTIFY_CLIENT_ERRORS: Record<string, (err: FastifyError) => Envelope> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => ({
    status: 413,
    code: 'body_too_large',
    message: 'body: the request body is larger than the limit.',
  }),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (err) => ({
    status: 415,
    code: 'unsupported_media_type',
    message: `body: ${err.message}; send application/json.`,
  }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ({
    status: 400,
    code: 'invalid_json',
    message: 'body: is empty but the content type is application/json.',
  }),
  FST_ERR_CTP_INVALID_JSON_BODY: () => ({
    status: 400,
    code: 'invalid_json',
    message: 'body: is not valid JSON.',
  }),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ({
    status: 400,
    code: 'invalid_input',
    message: 'body: its length does not match Content-Length.',
  }),
};

// Database errors that can reach here only through a race or a missed check in a doer.
const DATABASE_ERRORS: Record<string, Envelope> = {
  '23505': { status: 409, code: 'conflict', message: 'That conflicts with an existing record.' },
  '23503': { status: 409, code: 'conflict', message: 'That refers to a record that is gone.' },
  '42501': { status: 403, code: 'forbidden', message: 'You are not allowed to do that.' },
  '40001': { status: 409, code: 'conflict', message: 'A concurrent change won; retry.' },
  '40P01': { status: 409, code: 'conflict', message: 'A concurrent change won; retry.' },
};

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT';
}

function describeValidation(err: FastifyError): string {
  const context = err.validationContext ?? 'request';
  return (err.validation ?? [])
    .slice(0, 5)
    .map((issue) => {
      const path = issue.instancePath.split('/').filter(Boolean).join('.');
      return `${context}${path ? `.${path}` : ''}: ${issue.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/** Maps anything thrown to the API's error envelope; the one place that does. */
export function translateError(err: FastifyError | Error): Envelope | null {
  if (err instanceof ApiError)
    return { status: err.statusCode, code: err.code, message: err.message, headers: err.headers };
  const fastifyError = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fastifyError))
    return { status: 400, code: 'invalid_input', message: describeValidation(fastifyError) };
  const known = fastifyError.code && FASTIFY_CLIENT_ERRORS[fastifyError.code];
  if (known) return known(fastifyError);
  const state = sqlState(err);
  if (state && DATABASE_ERRORS[state]) return DATABASE_ERRORS[state];
  if (state?.startsWith('08') || state === '57P01' || state === '57P03' || isConnectionError(err))
    return {
      status: 503,
      code: 'database_unavailable',
      message: 'The database is not reachable right now; try again shortly.',
    };
  if (state?.startsWith('22'))
    return { status: 400, code: 'invalid_input', message: 'A value is out of range or malformed.' };
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500)
    return { status, code: 'bad_request', message: fastifyError.message };
  return null;
}

export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const envelope = translateError(err);
  if (!envelope) {
    request.log.error({ err }, 'unexpected error');
    return reply.status(500).send({
      error: {
        code: 'internal',
        message: `Something went wrong on our side (request id ${request.id}).`,
      },
    });
  }
  if (envelope.status >= 500) request.log.error({ err }, envelope.message);
  return reply
    .status(envelope.status)
    .headers(envelope.headers ?? {})
    .send({ error: { code: envelope.code, message: envelope.message } });
}
