import type { ServiceDefinition } from '@snapvm/protocol';
import { HttpError } from '../http/errors.js';

type Graph = ReadonlyMap<string, Pick<ServiceDefinition, 'dependsOn'>>;

/** Rejects a set of definitions with a missing dependency or a cycle. */
export function checkDependencies(services: Graph): void {
  for (const [name, def] of services) {
    for (const dep of def.dependsOn) {
      if (dep === name) {
        throw new HttpError(409, 'dependency_cycle', `${name} depends on itself`, 'dependsOn');
      }
      if (!services.has(dep)) {
        throw new HttpError(
          422,
          'missing_dependency',
          `${name} depends on ${dep}, which is not defined`,
          'dependsOn',
        );
      }
    }
  }
  startOrder(services);
}

/** Dependencies before dependents (Kahn's algorithm, ties broken by name for stable logs). */
export function startOrder(services: Graph): string[] {
  const pending = new Map<string, number>();
  for (const [name, def] of services) {
    pending.set(name, def.dependsOn.filter((d) => services.has(d)).length);
  }
  const order: string[] = [];
  while (pending.size > 0) {
    const ready = [...pending].filter(([, n]) => n === 0).map(([name]) => name);
    if (ready.length === 0) {
      const cycle = [...pending.keys()].sort().join(', ');
      throw new HttpError(409, 'dependency_cycle', `dependency cycle among: ${cycle}`, 'dependsOn');
    }
    for (const name of ready.sort()) {
      order.push(name);
      pending.delete(name);
      for (const [other, def] of services) {
        if (pending.has(other) && def.dependsOn.includes(name)) {
          pending.set(other, (pending.get(other) as number) - 1);
        }
      }
    }
  }
  return order;
}
