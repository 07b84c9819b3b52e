import type { FastifyRequest } from 'fastify';
import type { ClientInfo } from '../auth/accounts.js';
import { type Actor, type Credential, resolveActor } from '../auth/actor.js';
import { readCookie, SESSION_COOKIE } from '../auth/cookies.js';
import type { Database } from '../db/database.js';
import { UnauthorizedError } from '../errors.js';

const actors = new WeakMap<FastifyRequest, Actor | null>();

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/** The secret the request authenticates with: a bearer token wins over the cookie. */
export function credentialOf(request: FastifyRequest): Credential | null {
  const bearer = bearerToken(request);
  if (bearer) return { via: 'token', secret: bearer };
  const session = readCookie(request.headers.cookie, SESSION_COOKIE);
  return session ? { via: 'session', secret: session } : null;
}

/** The caller, or null when anonymous; resolved once per request. */
export async function findActor(db: Database, request: FastifyRequest): Promise<Actor | null> {
  if (actors.has(request)) return actors.get(request) ?? null;
  const credential = credentialOf(request);
  const actor = credential ? await resolveActor(db, credential) : null;
  actors.set(request, actor);
  return actor;
}

export async function requireActor(db: Database, request: FastifyRequest): Promise<Actor> {
  const actor = await findActor(db, request);
  if (!actor) throw new UnauthorizedError();
  return actor;
}

export function clientInfo(request: FastifyRequest): ClientInfo {
  return { ip: request.ip, userAgent: request.headers['user-agent'] ?? null };
}
