import { z } from 'zod';
import { nameSchema } from './names.js';

// The HTTP API's shapes (API.md is the contract). The server validates every request with
// these and generates its OpenAPI document from them; clients can parse responses with them.

export const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** A list response: `{items, nextCursor}`; a null cursor means the last page. */
export function listSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const pageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export type PageQuery = z.infer<typeof pageQuerySchema>;

const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email())
  .transform((email) => email.toLowerCase());
const displayNameSchema = z.string().trim().min(1).max(100);
const idSchema = z.uuid();

// --- users and auth ---

export const signupBodySchema = z.object({
  email: emailSchema,
  // argon2 cost grows with the input; 256 is generous for passphrases.
  password: z.string().min(8).max(256),
  name: displayNameSchema,
});
export type SignupBody = z.infer<typeof signupBodySchema>;

export const loginBodySchema = z.object({
  email: emailSchema,
  password: z.string().min(1).max(256),
});
export type LoginBody = z.infer<typeof loginBodySchema>;

export const userSchema = z.object({ id: idSchema, email: z.string(), name: z.string() });
export type User = z.infer<typeof userSchema>;

export const roleSchema = z.enum(['owner', 'admin', 'member']);
export type Role = z.infer<typeof roleSchema>;

export const orgSlugParamsSchema = z.object({ org: nameSchema });

export const membershipSummarySchema = z.object({
  slug: z.string(),
  name: z.string(),
  role: roleSchema,
});

export const meSchema = z.object({ user: userSchema, orgs: z.array(membershipSummarySchema) });
export type Me = z.infer<typeof meSchema>;

// --- API tokens ---

export const createTokenBodySchema = z.object({
  name: displayNameSchema,
  expiresAt: z.iso
    .datetime({ offset: true })
    .refine((value) => Date.parse(value) > Date.now(), 'must be in the future')
    .optional(),
});
export type CreateTokenBody = z.infer<typeof createTokenBodySchema>;

export const tokenSchema = z.object({
  id: idSchema,
  name: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
export type Token = z.infer<typeof tokenSchema>;

export const createdTokenSchema = tokenSchema.extend({ token: z.string() });
export const tokenParamsSchema = z.object({ id: idSchema });

// --- organizations, members, invitations ---

export const planSchema = z.object({ id: z.string(), name: z.string(), maxMachines: z.number() });

export const createOrgBodySchema = z.object({ slug: nameSchema, name: displayNameSchema });
export type CreateOrgBody = z.infer<typeof createOrgBodySchema>;

// Idle periods in seconds; null turns that tier off. The 60 s floor is for requests: a server
// may be configured with shorter defaults (tests, demos), so responses allow any period.
const idleSecondsSchema = z
  .number()
  .int()
  .min(60)
  .max(30 * 24 * 3600)
  .nullable();
const shownIdleSecondsSchema = z.number().int().nullable();

/** An org's idle defaults, which its machines inherit unless they override them. */
export const idleSettingsSchema = z.object({
  suspendAfterSeconds: idleSecondsSchema,
  stopAfterSeconds: idleSecondsSchema,
});
export type IdleSettings = z.infer<typeof idleSettingsSchema>;

export const patchOrgBodySchema = z
  .object({
    name: displayNameSchema.optional(),
    idle: idleSettingsSchema.partial().strict().optional(),
  })
  .strict()
  .refine((body) => body.name !== undefined || body.idle !== undefined, {
    message: 'give name or idle',
  });
export type PatchOrgBody = z.infer<typeof patchOrgBodySchema>;

export const orgSchema = z.object({
  id: idSchema,
  slug: z.string(),
  name: z.string(),
  role: roleSchema,
  plan: planSchema,
  /** The idle periods of every machine that does not override them. */
  idle: z.object({
    suspendAfterSeconds: shownIdleSecondsSchema,
    stopAfterSeconds: shownIdleSecondsSchema,
  }),
  createdAt: z.string(),
});
export type Org = z.infer<typeof orgSchema>;

export const memberSchema = z.object({ user: userSchema, role: roleSchema, joinedAt: z.string() });
export type Member = z.infer<typeof memberSchema>;

export const memberParamsSchema = z.object({ org: nameSchema, userId: idSchema });
export const patchMemberBodySchema = z.object({ role: roleSchema });

export const createInvitationBodySchema = z.object({ email: emailSchema, role: roleSchema });
export type CreateInvitationBody = z.infer<typeof createInvitationBodySchema>;

export const invitationSchema = z.object({
  id: idSchema,
  email: z.string(),
  role: roleSchema,
  createdAt: z.string(),
  expiresAt: z.string(),
  acceptedAt: z.string().nullable(),
});
export const createdInvitationSchema = invitationSchema.extend({
  token: z.string(),
  url: z.string(),
});
export const invitationTokenParamsSchema = z.object({ token: z.string().min(1).max(200) });

// --- machines ---

/** Named sizes: the limits a runtime applies to a machine. */
export const machineSizes = {
  small: { cpu: 1, memoryMiB: 1024, diskGiB: 5, pids: 512 },
  medium: { cpu: 2, memoryMiB: 4096, diskGiB: 20, pids: 2048 },
  large: { cpu: 4, memoryMiB: 8192, diskGiB: 50, pids: 4096 },
} as const;
export const machineSizeSchema = z.enum(['small', 'medium', 'large']);
export type MachineSize = z.infer<typeof machineSizeSchema>;

export const runtimeTypeSchema = z.enum(['local', 'sprites', 'external']);
export type RuntimeType = z.infer<typeof runtimeTypeSchema>;

export const machineStateSchema = z.enum([
  'creating',
  'starting',
  'started',
  'suspended',
  'stopping',
  'stopped',
  'destroying',
  'destroyed',
  'failed',
]);
export type MachineState = z.infer<typeof machineStateSchema>;

/** The states a user (or the idle scheduler) can ask for; the reconciler drives toward it. */
export const desiredStateSchema = z.enum(['started', 'suspended', 'stopped', 'destroyed']);
export type DesiredState = z.infer<typeof desiredStateSchema>;

export const urlAccessSchema = z.enum(['private', 'org', 'public']);
export type UrlAccess = z.infer<typeof urlAccessSchema>;

const regionSchema = z
  .string()
  .min(1)
  .max(40)
  .regex(/^[a-z0-9-]+$/, 'may contain only lowercase letters, digits and hyphens');

export const createMachineBodySchema = z.object({
  name: nameSchema,
  size: machineSizeSchema.default('small'),
  region: regionSchema.optional(),
  runtime: runtimeTypeSchema.default('local'),
});
export type CreateMachineBody = z.infer<typeof createMachineBodySchema>;

/** A machine's own period (seconds, or null for off), or "inherit" to follow the org's. */
export const INHERIT = 'inherit';
const idleOverrideSchema = z.union([idleSecondsSchema, z.literal(INHERIT)], {
  error: 'must be whole seconds (60 or more), null for never, or "inherit"',
});

export const patchMachineBodySchema = z
  .object({
    httpPort: z.number().int().min(1).max(65535).optional(),
    urlAccess: urlAccessSchema.optional(),
    idle: z
      .object({
        suspendAfterSeconds: idleOverrideSchema.optional(),
        stopAfterSeconds: idleOverrideSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type PatchMachineBody = z.infer<typeof patchMachineBodySchema>;

export const machineParamsSchema = z.object({ org: nameSchema, machine: nameSchema });

export const idleSourceSchema = z.enum(['machine', 'org']);
export type IdleSource = z.infer<typeof idleSourceSchema>;

/** Why a machine is awake and when it will next idle (servers that run machines only). */
export const machineActivitySchema = z.object({
  busy: z.boolean(),
  /** What keeps it awake, as the agent reports it; empty when idle. */
  reasons: z.array(z.string()),
  lastActiveAt: z.string().nullable(),
  /** When the machine's agent was last asked. */
  checkedAt: z.string().nullable(),
  /** What idling will do next if nothing happens before `at`; null when nothing is due. */
  nextIdle: z.object({ action: z.enum(['suspend', 'stop']), at: z.string() }).nullable(),
});
export type MachineActivity = z.infer<typeof machineActivitySchema>;

export const machineSchema = z.object({
  id: idSchema,
  name: z.string(),
  state: machineStateSchema,
  desiredState: desiredStateSchema,
  size: machineSizeSchema,
  limits: z.object({
    cpu: z.number(),
    memoryMiB: z.number(),
    diskGiB: z.number(),
    pids: z.number(),
  }),
  region: z.string(),
  runtime: runtimeTypeSchema,
  owner: userSchema.nullable(),
  httpPort: z.number(),
  urlAccess: urlAccessSchema,
  /** The periods in effect, and whether each is the machine's own or the org's default. */
  idle: z.object({
    suspendAfterSeconds: shownIdleSecondsSchema,
    stopAfterSeconds: shownIdleSecondsSchema,
    source: z.object({
      suspendAfterSeconds: idleSourceSchema,
      stopAfterSeconds: idleSourceSchema,
    }),
  }),
  urls: z.object({ app: z.string() }),
  activity: machineActivitySchema.optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Machine = z.infer<typeof machineSchema>;

export const machineEventSchema = z.object({
  id: z.string(),
  at: z.string(),
  kind: z.enum(['desired', 'observed']),
  from: z.string().nullable(),
  to: z.string(),
  reason: z.string(),
  actor: userSchema.nullable(),
});
export type MachineEvent = z.infer<typeof machineEventSchema>;

// --- audit log ---

export const auditEntrySchema = z.object({
  id: z.string(),
  at: z.string(),
  actor: userSchema.nullable(),
  action: z.string(),
  target: z.object({ type: z.string(), id: z.string().nullable() }),
  ip: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

// --- sign-in sessions ---

export const signInSessionSchema = z.object({
  id: idSchema,
  createdAt: z.string(),
  expiresAt: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  current: z.boolean(),
});
export type SignInSession = z.infer<typeof signInSessionSchema>;
export const signInSessionParamsSchema = z.object({ id: idSchema });
