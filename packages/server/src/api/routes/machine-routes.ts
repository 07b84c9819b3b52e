import {
  auditEntrySchema,
  createMachineBodySchema,
  execRequestSchema,
  execResultSchema,
  listSchema,
  type Machine,
  machineEventSchema,
  machineParamsSchema,
  machineSchema,
  orgSlugParamsSchema,
  pageQuerySchema,
  patchMachineBodySchema,
} from '@snapvm/protocol';
import { listAudit } from '../../audit/audit-log.js';
import { accessMachine } from '../../machines/machine-access.js';
import { execInMachine } from '../../machines/machine-exec.js';
import {
  createMachine,
  destroyMachine,
  getMachine,
  listMachineEvents,
  listMachines,
  patchMachine,
  requestMachineState,
} from '../../machines/machines.js';
import { requireOrgAdmin } from '../../orgs/orgs.js';
import { type Api, type AppDeps, inOrg } from '../deps.js';

export function registerMachineRoutes(api: Api, deps: AppDeps): void {
  const settings = deps.machineSettings;
  const tags = ['machines'];
  const lifecycle = deps.lifecycle;
  const withActivity = (machine: Machine): Machine =>
    lifecycle ? { ...machine, activity: lifecycle.describe(machine) } : machine;

  api.post(
    '/api/v1/orgs/:org/machines',
    {
      schema: {
        tags,
        summary: 'Create a machine record owned by the caller',
        params: orgSlugParamsSchema,
        body: createMachineBodySchema,
        response: { 201: machineSchema },
      },
    },
    async (request, reply) => {
      const machine = await inOrg(deps, request, request.params.org, (tx, org, actor) =>
        createMachine(tx, org, actor, request.body, settings, request.ip),
      );
      lifecycle?.notify(machine.id);
      return reply.status(201).send(machine);
    },
  );

  api.get(
    '/api/v1/orgs/:org/machines',
    {
      schema: {
        tags,
        summary: 'Machines the caller may see (members: their own; admins: all)',
        params: orgSlugParamsSchema,
        querystring: pageQuerySchema,
        response: { 200: listSchema(machineSchema) },
      },
    },
    async (request) => {
      const page = await inOrg(deps, request, request.params.org, (tx, org) =>
        listMachines(tx, org, request.query, settings),
      );
      return { ...page, items: page.items.map(withActivity) };
    },
  );

  api.get(
    '/api/v1/orgs/:org/machines/:machine',
    { schema: { tags, params: machineParamsSchema, response: { 200: machineSchema } } },
    async (request) =>
      withActivity(
        await inOrg(deps, request, request.params.org, (tx, org) =>
          getMachine(tx, org, request.params.machine, settings),
        ),
      ),
  );

  api.patch(
    '/api/v1/orgs/:org/machines/:machine',
    {
      schema: {
        tags,
        params: machineParamsSchema,
        body: patchMachineBodySchema,
        response: { 200: machineSchema },
      },
    },
    (request) =>
      inOrg(deps, request, request.params.org, (tx, org, actor) =>
        patchMachine(tx, org, actor, request.params.machine, request.body, settings, request.ip),
      ),
  );

  api.delete(
    '/api/v1/orgs/:org/machines/:machine',
    {
      schema: {
        tags,
        summary: 'Destroy the machine: state goes destroying, then destroyed',
        params: machineParamsSchema,
        response: { 202: machineSchema },
      },
    },
    async (request, reply) => {
      const machine = await inOrg(deps, request, request.params.org, (tx, org, actor) =>
        destroyMachine(tx, org, actor, request.params.machine, settings, request.ip),
      );
      lifecycle?.notify(machine.id);
      return reply.status(202).send(machine);
    },
  );

  for (const [action, desired] of [
    ['start', 'started'],
    ['stop', 'stopped'],
    ['suspend', 'suspended'],
  ] as const) {
    api.post(
      `/api/v1/orgs/:org/machines/:machine/${action}`,
      {
        schema: {
          tags,
          summary: `Ask for the machine to be ${desired} (the reconciler carries it out)`,
          params: machineParamsSchema,
          response: { 202: machineSchema },
        },
      },
      async (request, reply) => {
        const machine = await inOrg(deps, request, request.params.org, (tx, org, actor) =>
          requestMachineState(
            tx,
            org,
            actor,
            request.params.machine,
            desired,
            settings,
            request.ip,
          ),
        );
        lifecycle?.notify(machine.id);
        return reply.status(202).send(machine);
      },
    );
  }

  api.post(
    '/api/v1/orgs/:org/machines/:machine/exec',
    {
      schema: {
        tags,
        summary: 'Run a command in the machine (waking it first) and wait for it to finish',
        params: machineParamsSchema,
        body: execRequestSchema,
        response: { 200: execResultSchema },
      },
    },
    async (request, reply) => {
      // The program only: arguments and stdin may carry secrets.
      const { machine, actorId } = await accessMachine(deps, request, request.params, {
        action: 'machine.exec',
        details: { program: request.body.command[0] },
      });
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) gone.abort();
      });
      return execInMachine(lifecycle, machine, actorId, request.body, gone.signal);
    },
  );

  api.get(
    '/api/v1/orgs/:org/machines/:machine/events',
    {
      schema: {
        tags,
        summary: 'Lifecycle timeline, oldest first',
        params: machineParamsSchema,
        querystring: pageQuerySchema,
        response: { 200: listSchema(machineEventSchema) },
      },
    },
    (request) =>
      inOrg(deps, request, request.params.org, (tx, org) =>
        listMachineEvents(tx, org, request.params.machine, request.query),
      ),
  );

  api.get(
    '/api/v1/orgs/:org/audit',
    {
      schema: {
        tags: ['orgs'],
        summary: 'Who did what, newest first (admins and owners)',
        params: orgSlugParamsSchema,
        querystring: pageQuerySchema,
        response: { 200: listSchema(auditEntrySchema) },
      },
    },
    (request) =>
      inOrg(deps, request, request.params.org, (tx, org) => {
        requireOrgAdmin(org, 'read the audit log');
        return listAudit(tx, org.orgId, request.query);
      }),
  );
}
