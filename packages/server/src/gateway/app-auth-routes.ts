// The main origin's half of the machine-URL login handshake: a signed-in browser is sent
// back to the machine host with a one-minute, single-use ticket (app-auth.ts).
import { z } from 'zod';
import type { Api, AppDeps } from '../api/deps.js';
import { findActor } from '../api/request-context.js';
import type { AppAuth } from './app-auth.js';
import { parseAppHost } from './app-host.js';

const querySchema = z.object({ return: z.string().min(1).max(8192) });

export function registerAppAuthRoutes(api: Api, deps: AppDeps, auth: AppAuth): void {
  api.get(
    '/api/v1/app-auth',
    {
      schema: {
        tags: ['machines'],
        summary: 'Browser sign-in for machine URLs: redirects back with a single-use ticket',
        querystring: querySchema,
      },
    },
    async (request, reply) => {
      let target: URL;
      try {
        target = new URL(request.query.return);
      } catch {
        return reply.status(400).send({
          error: { code: 'invalid_input', message: 'querystring.return: is not a URL' },
        });
      }
      const host = parseAppHost(target.host, deps.config.appsDomain);
      // Only machine hosts of this server: never an open redirect.
      if (!host || (target.protocol !== 'http:' && target.protocol !== 'https:'))
        return reply.status(400).send({
          error: {
            code: 'invalid_input',
            message: `querystring.return: must be a machine URL (<machine>--<org>.${deps.config.appsDomain})`,
          },
        });
      const actor = await findActor(deps.db, request);
      if (actor?.via !== 'session') {
        const here = `/api/v1/app-auth?return=${encodeURIComponent(target.toString())}`;
        return reply
          .header('cache-control', 'no-store')
          .redirect(`/signin?next=${encodeURIComponent(here)}`, 302);
      }
      const ticket = await auth.issueTicket(
        { userId: actor.userId, sessionId: actor.credentialId },
        host.hostname,
      );
      const next = `${target.pathname}${target.search}`;
      return reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .redirect(
          `${target.origin}/__snapvm/auth?ticket=${ticket}&next=${encodeURIComponent(next)}`,
          302,
        );
    },
  );
}
