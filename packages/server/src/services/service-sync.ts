// Makes a machine's agent hold exactly the definitions the control plane stores. The agent
// persists its copy on the machine's disk and restarts services in dependency order on boot,
// so after a wake this is usually a no-op; it matters when definitions changed while the
// machine was stopped, or the machine's disk lost them.
import { type Service, serviceDefinitionSchema, serviceSchema } from '@snapvm/protocol';
import { z } from 'zod';
import { type AgentClient, AgentRequestError } from '../agent-client/agent-client.js';
import { dependencyOrder, type StoredService } from './service-store.js';

const serviceListSchema = z.object({ items: z.array(serviceSchema) });
const definitionKeys = Object.keys(serviceDefinitionSchema.shape);

export function listAgentServices(client: AgentClient, timeoutMs = 5_000): Promise<Service[]> {
  return client
    .json('GET', '/v1/services', undefined, serviceListSchema, { timeoutMs })
    .then((list) => list.items);
}

/** Pushes one definition. */
export function putAgentService(client: AgentClient, stored: StoredService): Promise<Service> {
  return client.json('PUT', `/v1/services/${stored.name}`, stored.definition, serviceSchema, {
    timeoutMs: 10_000,
  });
}

export async function deleteAgentService(client: AgentClient, name: string): Promise<void> {
  try {
    await client.json('DELETE', `/v1/services/${name}`, undefined, z.unknown(), {
      timeoutMs: 30_000,
    });
  } catch (err) {
    if (!(err instanceof AgentRequestError && err.status === 404)) throw err;
  }
}

/** Replaces what differs, adds what is missing (dependencies first), removes the rest. */
export async function syncAgentServices(
  client: AgentClient,
  wanted: StoredService[],
): Promise<void> {
  const held = new Map((await listAgentServices(client)).map((s) => [s.name, s]));
  for (const service of dependencyOrder(wanted)) {
    const current = held.get(service.name);
    if (current && sameDefinition(current, service)) continue;
    await putAgentService(client, service);
  }
  const extra = [...held.values()]
    .filter((s) => !wanted.some((w) => w.name === s.name))
    .map((s) => ({ name: s.name, definition: serviceDefinitionSchema.parse(pick(s)) }));
  // Dependents go before what they depend on, or the agent refuses the delete.
  for (const service of dependencyOrder(extra).reverse())
    await deleteAgentService(client, service.name);
}

function pick(service: Service): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of definitionKeys) {
    const value = (service as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) picked[key] = value;
  }
  return picked;
}

function sameDefinition(held: Service, wanted: StoredService): boolean {
  const parsed = serviceDefinitionSchema.safeParse(pick(held));
  return parsed.success && canonical(parsed.data) === canonical(wanted.definition);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}
