// The services API (API.md): definitions live in the database, status comes from the agent.
// Reads never wake a machine (a stopped machine's services are reported `stopped`);
// start/stop/restart and logs do, like exec.
import type { IncomingMessage } from 'node:http';
import {
  listSchema,
  machineParamsSchema,
  type Service,
  serviceDefinitionSchema,
  serviceLogsQuerySchema,
  serviceNameSchema,
  serviceSchema,
} from '@snapvm/protocol';
import { z } from 'zod';
import type { AgentClient } from '../agent-client/agent-client.js';
import { type Api, type AppDeps, inOrg } from '../api/deps.js';
import { recordAudit } from '../audit/audit-log.js';
import { ApiError, NotFoundError } from '../errors.js';
import { type MachineAgents, toApiError, viaAgent } from '../gateway/machine-agents.js';
import { getMachine } from '../machines/machines.js';
import {
  deleteDefinition,
  listDefinitions,
  putDefinition,
  type StoredService,
} from './service-store.js';
import { deleteAgentService, listAgentServices, putAgentService } from './service-sync.js';

const serviceParamsSchema = machineParamsSchema.extend({ service: serviceNameSchema });
const base = '/api/v1/orgs/:org/machines/:machine/services';

/** A definition with no live status: the machine is not running. */
function notRunning(stored: StoredService): Service {
  return {
    ...stored.definition,
    name: stored.name,
    status: 'stopped',
    pid: null,
    startedAt: null,
    exitCode: null,
    exitSignal: null,
    restartCount: 0,
    nextRestartAt: null,
  };
}

const missing = (name: string) => new NotFoundError(`Service "${name}"`);

function merge(stored: StoredService, live: Service | undefined): Service {
  // The definition is the control plane's; only the status fields come from the agent.
  return live ? { ...live, ...stored.definition, name: stored.name } : notRunning(stored);
}

export function registerServiceRoutes(api: Api, deps: AppDeps, agents: MachineAgents): void {
  const tags = ['services'];
  const settings = deps.machineSettings;

  const load = (request: Parameters<typeof inOrg>[1], org: string, machine: string) =>
    inOrg(deps, request, org, async (tx, context, actor) => {
      const found = await getMachine(tx, context, machine, settings);
      return { machine: found, actor, services: await listDefinitions(tx, found.id) };
    });

  /** Live status when the machine is awake; never wakes it. */
  const liveStatus = async (client: AgentClient | null): Promise<Map<string, Service>> => {
    if (!client) return new Map();
    try {
      return new Map((await listAgentServices(client, 3_000)).map((s) => [s.name, s]));
    } catch {
      return new Map();
    }
  };

  api.get(
    base,
    {
      schema: {
        tags,
        summary: 'Service definitions with their live status',
        params: machineParamsSchema,
        response: { 200: listSchema(serviceSchema) },
      },
    },
    async (request) => {
      const { machine, services } = await load(request, request.params.org, request.params.machine);
      const live = await liveStatus(await agents.ifAwake(machine));
      return { items: services.map((s) => merge(s, live.get(s.name))), nextCursor: null };
    },
  );

  api.get(
    `${base}/:service`,
    { schema: { tags, params: serviceParamsSchema, response: { 200: serviceSchema } } },
    async (request) => {
      const { machine, services } = await load(request, request.params.org, request.params.machine);
      const stored = services.find((s) => s.name === request.params.service);
      if (!stored) throw missing(request.params.service);
      const live = await liveStatus(await agents.ifAwake(machine));
      return merge(stored, live.get(request.params.service));
    },
  );

  api.put(
    `${base}/:service`,
    {
      schema: {
        tags,
        summary: 'Create or replace a service; pushed to the agent now if the machine runs',
        params: serviceParamsSchema,
        body: serviceDefinitionSchema,
        response: { 200: serviceSchema, 201: serviceSchema },
      },
    },
    async (request, reply) => {
      const name = request.params.service;
      const { machine, created } = await inOrg(
        deps,
        request,
        request.params.org,
        async (tx, org, actor) => {
          const found = await getMachine(tx, org, request.params.machine, settings);
          const isNew = await putDefinition(tx, org, found.id, name, request.body);
          // The command line only: env values may carry secrets.
          await recordAudit(tx, {
            orgId: org.orgId,
            actorId: actor.userId,
            action: isNew ? 'service.create' : 'service.update',
            targetType: 'machine',
            targetId: found.id,
            ip: request.ip,
            details: { service: name, command: request.body.command },
          });
          return { machine: found, created: isNew };
        },
      );
      const stored = { name, definition: request.body };
      const client = await agents.ifAwake(machine);
      let live: Service | undefined;
      if (client) {
        await agents.whenSynced(machine.id);
        live = await viaAgent(() => putAgentService(client, stored));
      }
      return reply.status(created ? 201 : 200).send(merge(stored, live));
    },
  );

  api.delete(
    `${base}/:service`,
    { schema: { tags, params: serviceParamsSchema, response: { 204: z.null() } } },
    async (request, reply) => {
      const machine = await inOrg(deps, request, request.params.org, async (tx, org, actor) => {
        const found = await getMachine(tx, org, request.params.machine, settings);
        await deleteDefinition(tx, found.id, request.params.service);
        await recordAudit(tx, {
          orgId: org.orgId,
          actorId: actor.userId,
          action: 'service.delete',
          targetType: 'machine',
          targetId: found.id,
          ip: request.ip,
          details: { service: request.params.service },
        });
        return found;
      });
      const client = await agents.ifAwake(machine);
      if (client) await viaAgent(() => deleteAgentService(client, request.params.service));
      return reply.status(204).send(null);
    },
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    api.post(
      `${base}/:service/${action}`,
      {
        schema: {
          tags,
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} the service (wakes the machine)`,
          params: serviceParamsSchema,
          response: { 200: serviceSchema },
        },
      },
      async (request) => {
        const { machine, actor, services } = await load(
          request,
          request.params.org,
          request.params.machine,
        );
        const stored = services.find((s) => s.name === request.params.service);
        if (!stored) throw missing(request.params.service);
        const client = await agents.wake(machine, actor.userId);
        const live = await viaAgent(() =>
          client.json('POST', `/v1/services/${stored.name}/${action}`, undefined, serviceSchema, {
            timeoutMs: 60_000,
          }),
        );
        return merge(stored, live);
      },
    );
  }

  api.get(
    `${base}/:service/logs`,
    {
      schema: {
        tags,
        summary: 'The service log as text; `follow=1` keeps the response open (wakes the machine)',
        params: serviceParamsSchema,
        querystring: serviceLogsQuerySchema,
      },
    },
    async (request, reply) => {
      const { machine, actor, services } = await load(
        request,
        request.params.org,
        request.params.machine,
      );
      const name = request.params.service;
      if (!services.some((s) => s.name === name)) throw missing(name);
      const client = await agents.wake(machine, actor.userId);
      const query = new URLSearchParams({ tail: String(request.query.tail) });
      if (request.query.follow === '1' || request.query.follow === 'true') query.set('follow', '1');
      const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = client.request({ method: 'GET', path: `/v1/services/${name}/logs?${query}` });
        req.on('response', resolve).on('error', reject).end();
        reply.raw.once('close', () => req.destroy());
      }).catch((err) => {
        throw toApiError(err);
      });
      if ((upstream.statusCode ?? 500) >= 400) {
        upstream.resume();
        throw new ApiError(
          502,
          'agent_error',
          `The machine's agent could not read the log of "${name}".`,
        );
      }
      reply.raw.once('close', () => upstream.destroy());
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff')
        .send(upstream);
    },
  );
}
