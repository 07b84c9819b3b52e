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
import { hashSecret } from '../auth/secrets.js';
import type { Config } from '../config.js';
import type { Database, OrgContext, Tx } from '../db/database.js';
import { UnauthorizedError } from '../errors.js';
import type { MachineLifecycle } from '../lifecycle/machine-lifecycle.js';
import type { MachineSettings } from '../machines/machines.js';
import { credentialOf } from './request-context.js';

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
  lifecycle: MachineLifecycle | null;
}

/** Runs `fn` in one transaction as the signed-in caller acting inside org `slug`. */
export async function inOrg<T>(
  deps: AppDeps,
  request: FastifyRequest,
  slug: string,
  fn: (tx: Tx, org: OrgContext, actor: Actor) => Promise<T>,
): Promise<T> {
  const credential = credentialOf(request);
  if (!credential) throw new UnauthorizedError();
  const hash = { via: credential.via, hash: hashSecret(credential.secret) };
  return deps.db.asCaller(hash, slug, (tx, actor, org) => fn(tx, org, actor));
}
