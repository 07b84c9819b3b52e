import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Service,
  type ServiceDefinition,
  serviceDefinitionSchema,
  serviceNameSchema,
} from '@snapvm/protocol';
import { HttpError, notFound, parseOrThrow } from '../http/errors.js';
import { log } from '../log.js';
import { checkDependencies, startOrder } from './dependency-order.js';
import { ServiceLog } from './service-log.js';
import { type RunnerTiming, ServiceRunner } from './service-runner.js';
import { ServiceStore, type StoredService } from './service-store.js';

export interface ServiceManagerOptions extends RunnerTiming {
  stateDir: string;
  logFileBytes: number;
}

// How long a service waits for its dependencies before starting anyway (and logging why).
const DEPENDENCY_WAIT_MS = 60_000;

/** The machine's durable services: definitions persisted in the state directory, started
 * in dependency order when the agent starts and stopped in reverse order when it stops. */
export class ServiceManager {
  private readonly store: ServiceStore;
  private readonly runners = new Map<string, ServiceRunner>();
  private readonly stored = new Map<string, StoredService>();
  private readonly logDir: string;
  // Writes to the definitions file happen one at a time, in request order.
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly options: ServiceManagerOptions) {
    this.store = new ServiceStore(options.stateDir);
    this.logDir = join(options.stateDir, 'logs');
  }

  /** Loads the persisted definitions and starts every service not explicitly stopped. */
  async startAll(): Promise<void> {
    mkdirSync(this.logDir, { recursive: true, mode: 0o700 });
    for (const [name, entry] of await this.store.load()) {
      this.stored.set(name, entry);
      this.runners.set(name, this.createRunner(name, entry.definition));
    }
    for (const name of startOrder(this.definitions())) {
      if (!this.stored.get(name)?.stopped) void this.startAfterDependencies(name);
    }
  }

  private definitions(): Map<string, ServiceDefinition> {
    return new Map([...this.stored].map(([name, s]) => [name, s.definition]));
  }

  private createRunner(name: string, definition: ServiceDefinition): ServiceRunner {
    const serviceLog = new ServiceLog(join(this.logDir, `${name}.log`), this.options.logFileBytes);
    return new ServiceRunner(name, definition, serviceLog, this.options);
  }

  private async startAfterDependencies(name: string): Promise<void> {
    const runner = this.runners.get(name);
    if (!runner) return;
    const deps = runner.definition.dependsOn;
    // Started in this turn when nothing needs waiting for, so a PUT's reply already says so.
    if (deps.every((dep) => this.runners.get(dep)?.isUp)) {
      runner.start();
      return;
    }
    runner.expectStart();
    const results = await Promise.all(
      deps.map((dep) => this.runners.get(dep)?.waitUntilUp(DEPENDENCY_WAIT_MS) ?? false),
    );
    const missing = deps.filter((_, i) => !results[i]);
    if (missing.length > 0) {
      log('warn', 'starting service although dependencies are not up', { service: name, missing });
    }
    if (this.runners.get(name) === runner && !this.stored.get(name)?.stopped) runner.start();
  }

  private persist(): Promise<void> {
    const snapshot = new Map(this.stored);
    this.saving = this.saving.then(() => this.store.save(snapshot));
    return this.saving;
  }

  private runner(name: string): ServiceRunner {
    parseOrThrow(serviceNameSchema, name, 'name');
    const runner = this.runners.get(name);
    if (!runner) throw notFound(`service ${name}`);
    return runner;
  }

  list(): Service[] {
    return [...this.runners.values()].map((r) => r.describe());
  }

  get(name: string): Service {
    return this.runner(name).describe();
  }

  /** Creates or replaces a definition; a running service restarts with the new one. */
  async put(name: string, body: unknown): Promise<{ created: boolean; service: Service }> {
    parseOrThrow(serviceNameSchema, name, 'name');
    const definition = parseOrThrow(serviceDefinitionSchema, body);
    if (
      definition.readiness?.type === 'http' &&
      !definition.readiness.port &&
      !definition.httpPort
    ) {
      throw new HttpError(
        422,
        'readiness_port_missing',
        'an HTTP readiness check needs readiness.port or the service httpPort',
        'readiness.port',
      );
    }
    if (definition.httpPort !== undefined) {
      for (const [other, entry] of this.stored) {
        if (other !== name && entry.definition.httpPort !== undefined) {
          throw new HttpError(
            409,
            'http_port_claimed',
            `service ${other} already claims the machine's HTTP port`,
            'httpPort',
          );
        }
      }
    }
    const next = this.definitions();
    next.set(name, definition);
    checkDependencies(next);

    const previous = this.stored.get(name);
    this.stored.set(name, { definition, stopped: previous?.stopped ?? false });
    await this.persist();
    let runner = this.runners.get(name);
    const created = !runner;
    if (runner) {
      const wasRunning = runner.isRunning;
      await runner.stop();
      runner.definition = definition;
      if (wasRunning || !previous?.stopped) void this.startAfterDependencies(name);
    } else {
      runner = this.createRunner(name, definition);
      this.runners.set(name, runner);
      void this.startAfterDependencies(name);
    }
    return { created, service: runner.describe() };
  }

  async remove(name: string): Promise<void> {
    const runner = this.runner(name);
    const dependents = [...this.stored]
      .filter(([, s]) => s.definition.dependsOn.includes(name))
      .map(([other]) => other);
    if (dependents.length > 0) {
      throw new HttpError(
        409,
        'service_has_dependents',
        `${dependents.join(', ')} depend on ${name}`,
        'name',
      );
    }
    this.runners.delete(name);
    this.stored.delete(name);
    await this.persist();
    await runner.stop();
    runner.log.close();
  }

  async start(name: string): Promise<Service> {
    const runner = this.runner(name);
    await this.setStopped(name, false);
    runner.start();
    return runner.describe();
  }

  async stop(name: string): Promise<Service> {
    const runner = this.runner(name);
    await this.setStopped(name, true);
    await runner.stop();
    return runner.describe();
  }

  async restart(name: string): Promise<Service> {
    const runner = this.runner(name);
    await this.setStopped(name, false);
    await runner.stop();
    runner.start();
    return runner.describe();
  }

  private async setStopped(name: string, stopped: boolean): Promise<void> {
    const entry = this.stored.get(name);
    if (!entry || entry.stopped === stopped) return;
    entry.stopped = stopped;
    await this.persist();
  }

  logOf(name: string) {
    return this.runner(name).log;
  }

  runningCount(): number {
    let n = 0;
    for (const runner of this.runners.values()) if (runner.isRunning) n++;
    return n;
  }

  /** Stops everything, dependents before their dependencies, without marking anything as
   * explicitly stopped: the services come back when the agent starts again. */
  async shutdown(): Promise<void> {
    const order = startOrder(this.definitions()).reverse();
    for (const name of order) await this.runners.get(name)?.stop();
    for (const runner of this.runners.values()) runner.log.close();
    await this.saving;
  }
}
