// The server's side of the agent API (docs/agent.md): JSON calls, raw streaming requests and
// WebSockets, all over the driver's AgentEndpoint.connect() so nothing ever resolves the
// agent's socket path itself (runtime/local/agent-socket.ts says why).
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import {
  AGENT_TOKEN_HEADER,
  type AgentActivity,
  type AgentHealth,
  agentActivitySchema,
  agentErrorSchema,
  agentHealthSchema,
  type ExecRequest,
  type ExecResult,
  execResultSchema,
} from '@snapvm/protocol';
import WebSocket from 'ws';
import type { z } from 'zod';
import type { AgentEndpoint } from '../runtime/driver.js';

/** The agent answered with an error envelope (status >= 400). */
export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field the agent blamed (400s), relative to the body or query. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The agent could not be reached, or it answered with something that is not its API. */
export class AgentUnreachableError extends Error {
  override name = 'AgentUnreachableError';
}

export interface AgentCallOptions {
  /** Gives up (and aborts the request) after this long; default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const MAX_JSON_BYTES = 64 * 1024 * 1024;

export class AgentClient {
  constructor(readonly endpoint: AgentEndpoint) {}

  health(options?: AgentCallOptions): Promise<AgentHealth> {
    return this.json('GET', '/v1/health', undefined, agentHealthSchema, options);
  }

  activity(options?: AgentCallOptions): Promise<AgentActivity> {
    return this.json('GET', '/v1/activity', undefined, agentActivitySchema, options);
  }

  /** Runs a command to completion; the call waits at least as long as `body.timeoutMs`. */
  exec(body: ExecRequest, options: AgentCallOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? (body.timeoutMs ?? 24 * 3600 * 1000) + 10_000;
    return this.json('POST', '/v1/exec', body, execResultSchema, { ...options, timeoutMs });
  }

  /**
   * A JSON request; the answer is checked against `schema`. Agent errors become
   * AgentRequestError, transport failures AgentUnreachableError.
   */
  async json<S extends z.ZodType>(
    method: string,
    path: string,
    body: unknown,
    schema: S,
    options: AgentCallOptions = {},
  ): Promise<z.infer<S>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const req = this.request({
          method,
          path,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': payload.length }
            : {},
        });
        const timer = setTimeout(
          () => req.destroy(new AgentUnreachableError(`the agent did not answer ${path} in time`)),
          options.timeoutMs ?? 10_000,
        );
        const abort = () => req.destroy(new AgentUnreachableError(`${path} was cancelled`));
        options.signal?.addEventListener('abort', abort, { once: true });
        const done = () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', abort);
        };
        req.on('error', (err) => {
          done();
          reject(
            err instanceof AgentUnreachableError
              ? err
              : new AgentUnreachableError(`the agent is unreachable: ${err.message}`),
          );
        });
        req.on('response', (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_JSON_BYTES)
              req.destroy(new AgentUnreachableError(`${path}: the answer is too large`));
            else chunks.push(chunk);
          });
          res.on('end', () => {
            done();
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', () => {});
        });
        req.end(payload);
      },
    );
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new AgentUnreachableError(`${path}: the agent answered ${status} with non-JSON`);
    }
    if (status >= 400) {
      const error = agentErrorSchema.safeParse(parsed);
      if (!error.success)
        throw new AgentUnreachableError(`${path}: the agent answered ${status} without an error`);
      const { code, message, field } = error.data.error;
      throw new AgentRequestError(status, code, message, field);
    }
    const result = schema.safeParse(parsed);
    if (!result.success)
      throw new AgentUnreachableError(`${path}: the agent's answer does not match its schema`);
    return result.data;
  }

  /**
   * A raw request with the agent token set, for streaming (proxied bodies, log follow). The
   * token goes in X-SnapVM-Agent-Token so a caller's own `authorization` header passes
   * through to the machine untouched. The caller ends it and handles 'response'/'error'.
   */
  request(options: {
    method: string;
    path: string;
    headers?: Record<string, string | string[] | number | undefined>;
  }): ClientRequest {
    const headers: Record<string, string | string[] | number> = {};
    for (const [name, value] of Object.entries(options.headers ?? {}))
      if (value !== undefined && name.toLowerCase() !== AGENT_TOKEN_HEADER) headers[name] = value;
    headers[AGENT_TOKEN_HEADER] = this.endpoint.token;
    return request({
      createConnection: () => this.endpoint.connect(),
      method: options.method,
      path: options.path,
      // With createConnection and no agent, node uses one fresh connection per request.
      headers,
    });
  }

  /** A WebSocket to an agent endpoint (`/v1/sessions/:id/attach?...`, `/v1/exec`). */
  webSocket(
    path: string,
    options: { headers?: Record<string, string>; maxPayload?: number } = {},
  ): WebSocket {
    return new WebSocket(`ws://agent${path}`, {
      createConnection: () => this.endpoint.connect(),
      headers: { ...options.headers, [AGENT_TOKEN_HEADER]: this.endpoint.token },
      perMessageDeflate: false,
      ...(options.maxPayload ? { maxPayload: options.maxPayload } : {}),
    } as WebSocket.ClientOptions);
  }
}
