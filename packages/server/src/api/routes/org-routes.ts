import {
  createdInvitationSchema,
  createInvitationBodySchema,
  createOrgBodySchema,
  invitationSchema,
  invitationTokenParamsSchema,
  listSchema,
  memberParamsSchema,
  memberSchema,
  membershipSummarySchema,
  orgSchema,
  orgSlugParamsSchema,
  patchMemberBodySchema,
  patchOrgBodySchema,
} from '@snapvm/protocol';
import { z } from 'zod';
import {
  acceptInvitation,
  createInvitation,
  listInvitations,
  revokeInvitation,
} from '../../orgs/invitations.js';
import { changeMemberRole, listMembers, removeMember } from '../../orgs/members.js';
import { createOrg, getOrg, listOrgs, patchOrg } from '../../orgs/orgs.js';
import { type Api, type AppDeps, inOrg } from '../deps.js';
import { requireActor } from '../request-context.js';

export function registerOrgRoutes(api: Api, deps: AppDeps): void {
  const { config, db } = deps;
  const tags = ['orgs'];
  const newOrgSettings = {
    plan: config.defaultPlan,
    idle: {
      suspendAfterSeconds: config.lifecycle.idleSuspendSeconds,
      stopAfterSeconds: config.lifecycle.idleStopSeconds,
    },
  };

  api.post(
    '/api/v1/orgs',
    {
      schema: {
        tags,
        summary: 'Create an org; the caller becomes its owner',
        body: createOrgBodySchema,
        response: { 201: orgSchema },
      },
    },
    async (request, reply) => {
      const actor = await requireActor(db, request);
      const org = await createOrg(db, actor, request.body, newOrgSettings, request.ip);
      return reply.status(201).send(org);
    },
  );

  api.get(
    '/api/v1/orgs',
    { schema: { tags, summary: "The caller's orgs", response: { 200: listSchema(orgSchema) } } },
    async (request) => ({
      items: await listOrgs(db, await requireActor(db, request)),
      nextCursor: null,
    }),
  );

  api.get(
    '/api/v1/orgs/:org',
    { schema: { tags, params: orgSlugParamsSchema, response: { 200: orgSchema } } },
    (request) => inOrg(deps, request, request.params.org, (tx, org) => getOrg(tx, org)),
  );

  api.patch(
    '/api/v1/orgs/:org',
    {
      schema: {
        tags,
        summary: "Rename the org or change its machines' idle defaults (admins and owners)",
        params: orgSlugParamsSchema,
        body: patchOrgBodySchema,
        response: { 200: orgSchema },
      },
    },
    (request) =>
      inOrg(deps, request, request.params.org, (tx, org, actor) =>
        patchOrg(tx, org, actor, request.body, request.ip),
      ),
  );

  api.get(
    '/api/v1/orgs/:org/members',
    {
      schema: { tags, params: orgSlugParamsSchema, response: { 200: listSchema(memberSchema) } },
    },
    async (request) => ({
      items: await inOrg(deps, request, request.params.org, listMembers),
      nextCursor: null,
    }),
  );

  api.patch(
    '/api/v1/orgs/:org/members/:userId',
    {
      schema: {
        tags,
        summary: "Change a member's role; an org always keeps an owner",
        params: memberParamsSchema,
        body: patchMemberBodySchema,
        response: { 200: memberSchema },
      },
    },
    (request) =>
      inOrg(deps, request, request.params.org, (tx, org, actor) =>
        changeMemberRole(tx, org, actor, request.params.userId, request.body.role, request.ip),
      ),
  );

  api.delete(
    '/api/v1/orgs/:org/members/:userId',
    {
      schema: {
        tags,
        summary: 'Remove a member (or leave, for yourself)',
        params: memberParamsSchema,
      },
    },
    async (request, reply) => {
      await inOrg(deps, request, request.params.org, (tx, org, actor) =>
        removeMember(tx, org, actor, request.params.userId, request.ip),
      );
      return reply.status(204).send();
    },
  );

  api.post(
    '/api/v1/orgs/:org/invitations',
    {
      schema: {
        tags,
        summary: 'Invite an email; returns the accept link (there is no mail server)',
        params: orgSlugParamsSchema,
        body: createInvitationBodySchema,
        response: { 201: createdInvitationSchema },
      },
    },
    async (request, reply) => {
      const invitation = await inOrg(deps, request, request.params.org, (tx, org, actor) =>
        createInvitation(
          tx,
          org,
          actor,
          request.body,
          { publicUrl: config.publicUrl, ttlHours: config.invitationTtlHours },
          request.ip,
        ),
      );
      return reply.status(201).send(invitation);
    },
  );

  api.get(
    '/api/v1/orgs/:org/invitations',
    {
      schema: {
        tags,
        summary: 'Pending invitations (admins and owners)',
        params: orgSlugParamsSchema,
        response: { 200: listSchema(invitationSchema) },
      },
    },
    async (request) => ({
      items: await inOrg(deps, request, request.params.org, listInvitations),
      nextCursor: null,
    }),
  );

  api.delete(
    '/api/v1/orgs/:org/invitations/:id',
    {
      schema: {
        tags,
        params: orgSlugParamsSchema.extend({ id: z.uuid() }),
      },
    },
    async (request, reply) => {
      await inOrg(deps, request, request.params.org, (tx, org, actor) =>
        revokeInvitation(tx, org, actor, request.params.id, request.ip),
      );
      return reply.status(204).send();
    },
  );

  api.post(
    '/api/v1/invitations/:token/accept',
    {
      schema: {
        tags,
        summary: 'Join the org the invitation is for (as the signed-in, invited user)',
        params: invitationTokenParamsSchema,
        response: { 200: membershipSummarySchema },
      },
    },
    async (request) =>
      acceptInvitation(db, await requireActor(db, request), request.params.token, request.ip),
  );
}
