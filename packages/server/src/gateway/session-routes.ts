// Terminal sessions (API.md): list, create, end, and the attach WebSocket. Access is the
// machine's visibility under RLS: its owner and the org's admins and owners; anyone else
// gets the same 404 as for a machine that does not exist.
import {
  attachQuerySchema,
  createSessionSchema,
  listSchema,
  machineParamsSchema,
  sessionIdSchema,
  sessionSchema,
} from '@snapvm/protocol';
import type { FastifyRequest } from 'fastify';
import WebSocket from 'ws';
import { z } from 'zod';
import type { Api, AppDeps } from '../api/deps.js';
import { NotFoundError } from '../errors.js';
import { accessMachine, type MachineAccess } from '../machines/machine-access.js';
import { type MachineAgents, toApiError, viaAgent } from './machine-agents.js';
import { relayTerminal } from './terminal-relay.js';

const sessionParamsSchema = machineParamsSchema.extend({ id: sessionIdSchema });
const base = '/api/v1/orgs/:org/machines/:machine/sessions';
const sessionListSchema = z.object({ items: z.array(sessionSchema) });

export interface SessionRouteOptions {
  heartbeatMs: number;
}

const attachTargets = new WeakMap<FastifyRequest, MachineAccess>();

export function registerSessionRoutes(
  api: Api,
  deps: AppDeps,
  agents: MachineAgents,
  options: SessionRouteOptions,
): void {
  const tags = ['sessions'];

  api.get(
    base,
    {
      schema: {
        tags,
        summary: 'Terminal sessions (empty while the machine is not running; never wakes it)',
        params: machineParamsSchema,
        response: { 200: listSchema(sessionSchema) },
      },
    },
    async (request) => {
      const { machine } = await accessMachine(deps, request, request.params);
      const client = await agents.ifAwake(machine);
      if (!client) return { items: [], nextCursor: null };
      const list = await viaAgent(() =>
        client.json('GET', '/v1/sessions', undefined, sessionListSchema, { timeoutMs: 5_000 }),
      );
      return { items: list.items, nextCursor: null };
    },
  );

  api.post(
    base,
    {
      schema: {
        tags,
        summary: 'Start a terminal session (wakes the machine)',
        params: machineParamsSchema,
        body: createSessionSchema,
        response: { 201: sessionSchema },
      },
    },
    async (request, reply) => {
      const { machine, actorId } = await accessMachine(deps, request, request.params, {
        action: 'session.create',
        details: { program: request.body.command?.[0] ?? null },
      });
      const client = await agents.wake(machine, actorId);
      const session = await viaAgent(() =>
        client.json('POST', '/v1/sessions', request.body, sessionSchema, { timeoutMs: 15_000 }),
      );
      return reply.status(201).send(session);
    },
  );

  api.delete(
    `${base}/:id`,
    { schema: { tags, params: sessionParamsSchema, response: { 204: z.null() } } },
    async (request, reply) => {
      const { machine } = await accessMachine(deps, request, request.params);
      // Sessions die with a stopped machine; a suspended one still holds them.
      if (machine.state !== 'started' && machine.state !== 'suspended')
        throw new NotFoundError(`Session "${request.params.id}"`);
      const client = await agents.wake(machine, null);
      await viaAgent(() =>
        client.json('DELETE', `/v1/sessions/${request.params.id}`, undefined, z.unknown()),
      );
      return reply.status(204).send(null);
    },
  );

  api.get(
    `${base}/:id/attach`,
    {
      websocket: true,
      schema: {
        tags,
        summary: 'Terminal WebSocket (binary: bytes; text: resize/attached/exit/waking)',
        params: sessionParamsSchema,
        querystring: attachQuerySchema,
      },
      // Before the upgrade, so an unknown machine or a stranger gets a plain 401/404.
      preHandler: async (request) => {
        const params = request.params as z.infer<typeof sessionParamsSchema>;
        attachTargets.set(request, await accessMachine(deps, request, params));
      },
    },
    (socket, request) => {
      const target = attachTargets.get(request);
      if (!target) return socket.close(1011, 'not authorized');
      const query = request.query as z.infer<typeof attachQuerySchema>;
      const params = request.params as z.infer<typeof sessionParamsSchema>;
      void attach(socket, target, params.id, query);
    },
  );

  async function attach(
    socket: WebSocket,
    target: MachineAccess,
    sessionId: string,
    query: z.infer<typeof attachQuerySchema>,
  ): Promise<void> {
    const gone = new AbortController();
    socket.once('close', () => gone.abort());
    // Until the agent answers, the browser sees why it waits (the console shows "waking").
    if (target.machine.state !== 'started')
      socket.send(
        JSON.stringify({
          type: 'waking',
          state: target.machine.state,
          message: 'waking machine…',
        }),
      );
    let agentSocket: WebSocket;
    try {
      const client = await agents.wake(target.machine, target.actorId, gone.signal);
      const search = new URLSearchParams();
      for (const [key, value] of Object.entries(query))
        if (value !== undefined) search.set(key, String(value));
      agentSocket = client.webSocket(`/v1/sessions/${sessionId}/attach?${search}`, {
        maxPayload: 64 * 1024 * 1024,
      });
    } catch (err) {
      if (socket.readyState !== WebSocket.OPEN) return;
      const apiError = toApiError(err) as { code?: string; message?: string; statusCode?: number };
      socket.send(
        JSON.stringify({
          type: 'error',
          code: apiError.code ?? 'machine_unavailable',
          message: apiError.message ?? 'The machine could not be woken.',
        }),
      );
      // 1013 "try again later": the console retries with backoff.
      socket.close(apiError.statusCode === 404 ? 4004 : 1013, 'machine unavailable');
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) {
      agentSocket.terminate();
      return;
    }
    agentSocket.once('unexpected-response', (_req, res) => {
      const code = res.statusCode === 404 ? 4004 : 1011;
      res.resume();
      if (socket.readyState === WebSocket.OPEN)
        socket.close(code, res.statusCode === 404 ? 'no such session' : 'agent refused');
    });
    relayTerminal(socket, agentSocket, {
      heartbeatMs: options.heartbeatMs,
      onClose: () => agents.lifecycle?.idle.touch(target.machine.id),
    });
  }
}
