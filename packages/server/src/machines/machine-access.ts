// How a route reaches one machine on behalf of its caller: the machine is read as the caller
// inside the org, so RLS decides who may (anyone else gets the same 404 as for a machine that
// does not exist). An action that reaches into the machine (a command, a terminal) is audited
// in that transaction, before any wake, so an attempt is on record even if the wake fails.
import type { Machine } from '@snapvm/protocol';
import type { FastifyRequest } from 'fastify';
import { type AppDeps, inOrg } from '../api/deps.js';
import { recordAudit } from '../audit/audit-log.js';
import { getMachine } from './machines.js';

export interface MachineAccess {
  machine: Machine;
  /** The caller, for the machine's events when the route wakes it. */
  actorId: string;
}

export interface AuditedAction {
  action: string;
  details: Record<string, unknown>;
}

export function accessMachine(
  deps: AppDeps,
  request: FastifyRequest,
  params: { org: string; machine: string },
  audit?: AuditedAction,
): Promise<MachineAccess> {
  return inOrg(deps, request, params.org, async (tx, org, actor) => {
    const machine = await getMachine(tx, org, params.machine, deps.machineSettings);
    if (audit)
      await recordAudit(tx, {
        orgId: org.orgId,
        actorId: actor.userId,
        action: audit.action,
        targetType: 'machine',
        targetId: machine.id,
        ip: request.ip,
        details: audit.details,
      });
    return { machine, actorId: actor.userId };
  });
}
