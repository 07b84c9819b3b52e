import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ServiceDefinition, serviceDefinitionSchema } from '@snapvm/protocol';
import { z } from 'zod';
import { log } from '../log.js';

const storedSchema = z.object({
  version: z.literal(1),
  services: z.record(
    z.string(),
    z.object({ definition: serviceDefinitionSchema, stopped: z.boolean() }),
  ),
});

export interface StoredService {
  definition: ServiceDefinition;
  /** An explicit stop sticks across agent restarts until the service is started again. */
  stopped: boolean;
}

/** Service definitions on the machine's own disk, so they survive agent restarts and
 * hibernation. Writes go to a temporary file first and are renamed into place. */
export class ServiceStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'services.json');
  }

  async load(): Promise<Map<string, StoredService>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    let parsed: z.infer<typeof storedSchema>;
    try {
      parsed = storedSchema.parse(JSON.parse(text));
    } catch (err) {
      // A damaged file must not keep the agent (and with it every terminal) from starting;
      // it is kept aside for inspection instead of being overwritten by the next save.
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside);
      log('error', 'service definitions unreadable; starting without them', {
        movedTo: aside,
        err: (err as Error).message.slice(0, 500),
      });
      return new Map();
    }
    return new Map(Object.entries(parsed.services));
  }

  async save(services: ReadonlyMap<string, StoredService>): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true });
    const body = { version: 1, services: Object.fromEntries(services) };
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flush: true });
    await rename(tmp, this.path);
  }
}
