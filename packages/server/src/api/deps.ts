import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Actor } from '../auth/actor.js';
import type { LoginLimiter } from '../auth/login-limiter.js';
import type { Config } from '../config.js';
import type { Database, OrgContext, Tx } from '../db/database.js';
import type { MachineSettings } from '../machines/machines.js';
import { requireActor } from './request-context.js';

export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export interface AppDeps {
  config: Config;
  db: Database;
  limiter: LoginLimiter;
  machineSettings: MachineSettings;
}

/** Runs `fn` in one transaction as the signed-in caller acting inside org `slug`. */
export async function inOrg<T>(
  deps: AppDeps,
  request: FastifyRequest,
  slug: string,
  fn: (tx: Tx, org: OrgContext, actor: Actor) => Promise<T>,
): Promise<T> {
  const actor = await requireActor(deps.db, request);
  return deps.db.asMember(actor.userId, slug, (tx, org) => fn(tx, org, actor));
}
