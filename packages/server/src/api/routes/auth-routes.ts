import {
  createdTokenSchema,
  createTokenBodySchema,
  listSchema,
  loginBodySchema,
  meSchema,
  signInSessionParamsSchema,
  signInSessionSchema,
  signupBodySchema,
  tokenParamsSchema,
  tokenSchema,
  userSchema,
} from '@snapvm/protocol';
import { describeMe, logIn, logOut, signUp } from '../../auth/accounts.js';
import { createApiToken, listApiTokens, revokeApiToken } from '../../auth/api-tokens.js';
import { clearedSessionCookie, sessionCookie } from '../../auth/cookies.js';
import { listSessions, revokeSession } from '../../auth/sessions.js';
import type { Api, AppDeps } from '../deps.js';
import { clientInfo, findActor, requireActor } from '../request-context.js';

export function registerAuthRoutes(api: Api, deps: AppDeps): void {
  const { config, db } = deps;
  const maxAge = config.sessionTtlHours * 3600;
  const secure = (protocol: string) =>
    protocol === 'https' || config.publicUrl.startsWith('https:');

  api.post(
    '/api/v1/auth/signup',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account and sign in',
        body: signupBodySchema,
        response: { 201: userSchema },
      },
    },
    async (request, reply) => {
      const { user, sessionToken } = await signUp(
        db,
        request.body,
        { inviteOnly: config.signup === 'invite-only', sessionTtlHours: config.sessionTtlHours },
        clientInfo(request),
      );
      reply.header('set-cookie', sessionCookie(sessionToken, maxAge, secure(request.protocol)));
      return reply.status(201).send(user);
    },
  );

  api.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in with email and password',
        body: loginBodySchema,
        response: { 200: userSchema },
      },
    },
    async (request, reply) => {
      const { user, sessionToken } = await logIn(
        db,
        request.body,
        { sessionTtlHours: config.sessionTtlHours, limiter: deps.limiter },
        clientInfo(request),
      );
      reply.header('set-cookie', sessionCookie(sessionToken, maxAge, secure(request.protocol)));
      return user;
    },
  );

  api.post(
    '/api/v1/auth/logout',
    { schema: { tags: ['auth'], summary: 'End the current session' } },
    async (request, reply) => {
      await logOut(db, await findActor(db, request), request.ip);
      reply.header('set-cookie', clearedSessionCookie(secure(request.protocol)));
      return reply.status(204).send();
    },
  );

  api.get(
    '/api/v1/me',
    {
      schema: { tags: ['auth'], summary: 'The caller and their orgs', response: { 200: meSchema } },
    },
    async (request) => describeMe(db, await requireActor(db, request)),
  );

  api.post(
    '/api/v1/me/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an API token (its secret is shown only in this response)',
        body: createTokenBodySchema,
        response: { 201: createdTokenSchema },
      },
    },
    async (request, reply) => {
      const actor = await requireActor(db, request);
      return reply.status(201).send(await createApiToken(db, actor, request.body, request.ip));
    },
  );

  api.get(
    '/api/v1/me/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: "The caller's API tokens, without secrets",
        response: { 200: listSchema(tokenSchema) },
      },
    },
    async (request) => ({
      items: await listApiTokens(db, await requireActor(db, request)),
      nextCursor: null,
    }),
  );

  api.delete(
    '/api/v1/me/tokens/:id',
    { schema: { tags: ['auth'], summary: 'Revoke an API token', params: tokenParamsSchema } },
    async (request, reply) => {
      const actor = await requireActor(db, request);
      await revokeApiToken(db, actor, request.params.id, request.ip);
      return reply.status(204).send();
    },
  );

  api.get(
    '/api/v1/me/sessions',
    {
      schema: {
        tags: ['auth'],
        summary: "The caller's live sign-in sessions",
        response: { 200: listSchema(signInSessionSchema) },
      },
    },
    async (request) => ({
      items: await listSessions(db, await requireActor(db, request)),
      nextCursor: null,
    }),
  );

  api.delete(
    '/api/v1/me/sessions/:id',
    {
      schema: { tags: ['auth'], summary: 'Sign a session out', params: signInSessionParamsSchema },
    },
    async (request, reply) => {
      const actor = await requireActor(db, request);
      await revokeSession(db, actor, request.params.id, request.ip);
      return reply.status(204).send();
    },
  );
}
