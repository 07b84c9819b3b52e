// Service definitions in the control plane: the source of truth the agent is synced from.
// The agent checks the same rules, but only for the definitions it holds; checking here means
// a machine that is stopped still refuses a cycle or a second claim on a port.
import type { ServiceDefinition } from '@snapvm/protocol';
import type { OrgContext, Tx } from '../db/database.js';
import { ConflictError, NotFoundError, UnprocessableError } from '../errors.js';

export interface StoredService {
  name: string;
  definition: ServiceDefinition;
}

export async function listDefinitions(tx: Tx, machineId: string): Promise<StoredService[]> {
  return tx.query<StoredService>(
    'SELECT name, definition FROM service_definitions WHERE machine_id = $1 ORDER BY name',
    [machineId],
  );
}

export async function getDefinition(
  tx: Tx,
  machineId: string,
  name: string,
): Promise<StoredService> {
  const [row] = await tx.query<StoredService>(
    'SELECT name, definition FROM service_definitions WHERE machine_id = $1 AND name = $2',
    [machineId, name],
  );
  if (!row) throw new NotFoundError(`Service "${name}"`);
  return row;
}

/** Stores (creates or replaces) a definition; true when it was created. */
export async function putDefinition(
  tx: Tx,
  org: OrgContext,
  machineId: string,
  name: string,
  definition: ServiceDefinition,
): Promise<boolean> {
  // Serializes concurrent PUTs on one machine so two cannot each pass the checks.
  await tx.query('SELECT id FROM machines WHERE id = $1 FOR UPDATE', [machineId]);
  const others = (await listDefinitions(tx, machineId)).filter((s) => s.name !== name);
  for (const dependency of definition.dependsOn)
    if (dependency !== name && !others.some((s) => s.name === dependency))
      throw new UnprocessableError(
        `dependsOn: there is no service "${dependency}" on this machine`,
        'dependency_missing',
      );
  // `httpPort` marks the service as the machine's web app; a machine has one (as in the agent).
  if (definition.httpPort !== undefined) {
    const claimant = others.find((s) => s.definition.httpPort !== undefined);
    if (claimant)
      throw new ConflictError(
        `httpPort: service "${claimant.name}" already claims the machine's HTTP port`,
        'http_port_claimed',
      );
  }
  const cycle = findCycle([...others, { name, definition }]);
  if (cycle)
    throw new ConflictError(
      `dependsOn: this would make a dependency cycle (${cycle.join(' → ')})`,
      'dependency_cycle',
    );
  const [row] = await tx.query<{ created: boolean }>(
    `INSERT INTO service_definitions (org_id, machine_id, name, definition)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (machine_id, name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()
     RETURNING (xmax = 0) AS created`,
    [org.orgId, machineId, name, JSON.stringify(definition)],
  );
  return row?.created ?? false;
}

export async function deleteDefinition(tx: Tx, machineId: string, name: string): Promise<void> {
  await tx.query('SELECT id FROM machines WHERE id = $1 FOR UPDATE', [machineId]);
  const all = await listDefinitions(tx, machineId);
  if (!all.some((s) => s.name === name)) throw new NotFoundError(`Service "${name}"`);
  const dependents = all.filter((s) => s.definition.dependsOn.includes(name)).map((s) => s.name);
  if (dependents.length > 0)
    throw new ConflictError(
      `Service "${name}" is needed by ${dependents.map((d) => `"${d}"`).join(', ')}; delete or change those first.`,
      'service_in_use',
    );
  await tx.query('DELETE FROM service_definitions WHERE machine_id = $1 AND name = $2', [
    machineId,
    name,
  ]);
}

/** The services in an order where each comes after everything it depends on. */
export function dependencyOrder(services: StoredService[]): StoredService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const ordered: StoredService[] = [];
  const placed = new Set<string>();
  const place = (service: StoredService, path: Set<string>) => {
    if (placed.has(service.name) || path.has(service.name)) return;
    path.add(service.name);
    for (const dependency of service.definition.dependsOn) {
      const found = byName.get(dependency);
      if (found) place(found, path);
    }
    placed.add(service.name);
    ordered.push(service);
  };
  for (const service of services) place(service, new Set());
  return ordered;
}

/** A dependency cycle as a list of names (first repeated at the end), or null. */
export function findCycle(services: StoredService[]): string[] | null {
  const byName = new Map(services.map((s) => [s.name, s.definition.dependsOn]));
  const done = new Set<string>();
  const visit = (name: string, stack: string[]): string[] | null => {
    const at = stack.indexOf(name);
    if (at >= 0) return [...stack.slice(at), name];
    if (done.has(name)) return null;
    for (const next of byName.get(name) ?? []) {
      const cycle = visit(next, [...stack, name]);
      if (cycle) return cycle;
    }
    done.add(name);
    return null;
  };
  for (const name of byName.keys()) {
    const cycle = visit(name, []);
    if (cycle) return cycle;
  }
  return null;
}
