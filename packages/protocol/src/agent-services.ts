import { z } from 'zod';
import { agentEnvSchema } from './agent-common.js';

export const serviceNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'service names are 1-63 lowercase letters, digits, _ or -');

const portSchema = z.number().int().min(1).max(65535);

export const serviceReadinessSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('http'),
      path: z.string().startsWith('/').max(2048),
      /** Defaults to the service's httpPort. */
      port: portSchema.optional(),
    })
    .strict(),
  z.object({ type: z.literal('tcp'), port: portSchema }).strict(),
]);

export const serviceDefinitionSchema = z
  .object({
    command: z.string().min(1).max(4096),
    args: z.array(z.string().max(65536)).max(4096).default([]),
    cwd: z.string().min(1).max(4096).optional(),
    env: agentEnvSchema.default({}),
    /** At most one service per machine may claim the machine's HTTP port. */
    httpPort: portSchema.optional(),
    dependsOn: z.array(serviceNameSchema).max(64).default([]),
    restart: z.enum(['always', 'on-failure', 'never']).default('always'),
    readiness: serviceReadinessSchema.optional(),
  })
  .strict();
export type ServiceDefinitionInput = z.input<typeof serviceDefinitionSchema>;
export type ServiceDefinition = z.infer<typeof serviceDefinitionSchema>;

export const serviceStatusSchema = z.enum([
  'starting',
  'running',
  'ready',
  'stopping',
  'stopped',
  'failed',
  'backoff',
]);
export type ServiceStatus = z.infer<typeof serviceStatusSchema>;

export const serviceSchema = serviceDefinitionSchema.extend({
  name: serviceNameSchema,
  status: serviceStatusSchema,
  pid: z.number().int().nullable(),
  startedAt: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  exitSignal: z.string().nullable(),
  restartCount: z.number().int(),
  /** When the next restart attempt happens while in `backoff`. */
  nextRestartAt: z.string().nullable(),
});
export type Service = z.infer<typeof serviceSchema>;

export const serviceLogsQuerySchema = z.object({
  tail: z.coerce.number().int().min(0).max(100000).default(100),
  follow: z.enum(['0', '1', 'true', 'false']).optional(),
});
