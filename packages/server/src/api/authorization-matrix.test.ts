import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type ApiClient, startTestServer, type TestServer } from '../test-support/test-server.js';

// Every endpoint × every kind of caller, against org "acme" and a machine its owner owns.
// Non-members get 404 (an org they can't see does not exist for them), members get 403 for
// admin-only actions and 404 for machines that aren't theirs.

type ActorName = 'anonymous' | 'outsider' | 'member' | 'admin' | 'owner';
const ACTORS: ActorName[] = ['anonymous', 'outsider', 'member', 'admin', 'owner'];

interface Case {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The route pattern as it appears in the OpenAPI document. */
  route: string;
  /** The status each of ACTORS gets, in that order. */
  expect: [number, number, number, number, number];
  /** Builds the concrete path and body for one call (fresh targets for destructive calls). */
  prepare?: (actor: ActorName) => Promise<{ path?: string; body?: unknown }>;
  body?: unknown;
  /** Tells apart several cases of one route. */
  note?: string;
}

let server: TestServer;
const clients = {} as Record<ActorName, ApiClient & { user?: { id: string; email: string } }>;
let founder: Awaited<ReturnType<TestServer['signUp']>>;
const unique = () => randomBytes(3).toString('hex');

async function freshMember(role: 'member' | 'admin') {
  const user = await server.signUp(`extra-${role}`);
  const inv = await clients.owner.post('/api/v1/orgs/acme/invitations', {
    email: user.user.email,
    role,
  });
  await user.post(`/api/v1/invitations/${inv.body.token}/accept`);
  return user.user.id;
}

async function freshOwnerMachine(): Promise<string> {
  const name = `m-${unique()}`;
  const res = await clients.owner.post('/api/v1/orgs/acme/machines', { name });
  assert.equal(res.status, 201);
  return name;
}

const ORG = '/api/v1/orgs/{org}';
const MACHINE = `${ORG}/machines/{machine}`;
const SERVICE = `${MACHINE}/services/{service}`;

const cases: Case[] = [
  { method: 'POST', route: '/api/v1/auth/logout', expect: [204, 204, 204, 204, 204] },
  { method: 'GET', route: '/api/v1/me', expect: [401, 200, 200, 200, 200] },
  {
    method: 'POST',
    route: '/api/v1/me/tokens',
    body: { name: 'matrix' },
    expect: [401, 201, 201, 201, 201],
  },
  { method: 'GET', route: '/api/v1/me/tokens', expect: [401, 200, 200, 200, 200] },
  {
    method: 'DELETE',
    route: '/api/v1/me/tokens/{id}',
    expect: [401, 204, 204, 204, 204],
    async prepare(actor) {
      if (actor === 'anonymous') return { path: `/api/v1/me/tokens/${crypto.randomUUID()}` };
      const token = await clients[actor].post('/api/v1/me/tokens', { name: 'doomed' });
      return { path: `/api/v1/me/tokens/${token.body.id}` };
    },
  },
  { method: 'GET', route: '/api/v1/me/sessions', expect: [401, 200, 200, 200, 200] },
  {
    method: 'DELETE',
    route: '/api/v1/me/sessions/{id}',
    expect: [401, 204, 204, 204, 204],
    async prepare(actor) {
      if (actor === 'anonymous') return { path: `/api/v1/me/sessions/${crypto.randomUUID()}` };
      const session = await signIn(actor);
      const listed = await server.client({ session }).get('/api/v1/me/sessions');
      const id = listed.body.items.find((s: { current: boolean }) => s.current).id;
      return { path: `/api/v1/me/sessions/${id}` };
    },
  },
  {
    method: 'POST',
    route: '/api/v1/orgs',
    expect: [401, 201, 201, 201, 201],
    prepare: async () => ({ body: { slug: `o-${unique()}`, name: 'New' } }),
  },
  { method: 'GET', route: '/api/v1/orgs', expect: [401, 200, 200, 200, 200] },
  { method: 'GET', route: ORG, expect: [401, 404, 200, 200, 200] },
  { method: 'PATCH', route: ORG, body: { name: 'Acme Inc' }, expect: [401, 404, 403, 200, 200] },
  {
    method: 'PATCH',
    route: ORG,
    note: 'idle defaults',
    body: { idle: { suspendAfterSeconds: 600, stopAfterSeconds: null } },
    expect: [401, 404, 403, 200, 200],
  },
  { method: 'GET', route: `${ORG}/members`, expect: [401, 404, 200, 200, 200] },
  {
    method: 'PATCH',
    route: `${ORG}/members/{userId}`,
    body: { role: 'admin' },
    expect: [401, 404, 403, 200, 200],
    prepare: async () => ({ path: `/api/v1/orgs/acme/members/${await freshMember('member')}` }),
  },
  {
    method: 'DELETE',
    route: `${ORG}/members/{userId}`,
    expect: [401, 404, 403, 204, 204],
    prepare: async () => ({ path: `/api/v1/orgs/acme/members/${await freshMember('member')}` }),
  },
  {
    method: 'POST',
    route: `${ORG}/invitations`,
    expect: [401, 404, 403, 201, 201],
    prepare: async () => ({ body: { email: `i-${unique()}@example.com`, role: 'member' } }),
  },
  { method: 'GET', route: `${ORG}/invitations`, expect: [401, 404, 403, 200, 200] },
  {
    method: 'DELETE',
    route: `${ORG}/invitations/{id}`,
    expect: [401, 404, 403, 204, 204],
    async prepare() {
      const inv = await clients.owner.post('/api/v1/orgs/acme/invitations', {
        email: `r-${unique()}@example.com`,
        role: 'member',
      });
      return { path: `/api/v1/orgs/acme/invitations/${inv.body.id}` };
    },
  },
  {
    // Every signed-in user may accept an invitation addressed to them (to another org here,
    // so the outsider stays an outsider of acme).
    method: 'POST',
    route: '/api/v1/invitations/{token}/accept',
    expect: [401, 200, 200, 200, 200],
    async prepare(actor) {
      const email = clients[actor].user?.email ?? 'anonymous@example.com';
      const inv = await founder.post('/api/v1/orgs/side/invitations', { email, role: 'member' });
      return { path: `/api/v1/invitations/${inv.body.token}/accept` };
    },
  },
  {
    method: 'POST',
    route: `${ORG}/machines`,
    expect: [401, 404, 201, 201, 201],
    prepare: async () => ({ body: { name: `n-${unique()}` } }),
  },
  { method: 'GET', route: `${ORG}/machines`, expect: [401, 404, 200, 200, 200] },
  { method: 'GET', route: MACHINE, expect: [401, 404, 404, 200, 200] },
  { method: 'PATCH', route: MACHINE, body: { httpPort: 9000 }, expect: [401, 404, 404, 200, 200] },
  {
    method: 'DELETE',
    route: MACHINE,
    expect: [401, 404, 404, 202, 202],
    prepare: async () => ({ path: `/api/v1/orgs/acme/machines/${await freshOwnerMachine()}` }),
  },
  { method: 'POST', route: `${MACHINE}/start`, expect: [401, 404, 404, 202, 202] },
  { method: 'POST', route: `${MACHINE}/stop`, expect: [401, 404, 404, 202, 202] },
  // Authorization is checked before the state: a fresh machine is still `creating`.
  { method: 'POST', route: `${MACHINE}/suspend`, expect: [401, 404, 404, 409, 409] },
  // This server runs no machines (SNAPVM_LIFECYCLE=off): allowed callers get the 503.
  {
    method: 'POST',
    route: `${MACHINE}/exec`,
    body: { command: ['true'] },
    expect: [401, 404, 404, 503, 503],
  },
  { method: 'GET', route: `${MACHINE}/events`, expect: [401, 404, 404, 200, 200] },
  { method: 'GET', route: `${ORG}/audit`, expect: [401, 404, 403, 200, 200] },
  // Terminals and services: the machine's owner and the org's admins. With no machines
  // running here, reads answer from the database and anything that needs the agent is a 503.
  { method: 'GET', route: `${MACHINE}/sessions`, expect: [401, 404, 404, 200, 200] },
  { method: 'POST', route: `${MACHINE}/sessions`, body: {}, expect: [401, 404, 404, 503, 503] },
  // A machine that is not running has no sessions.
  { method: 'DELETE', route: `${MACHINE}/sessions/{id}`, expect: [401, 404, 404, 404, 404] },
  // Without an upgrade the authorization still answers first.
  { method: 'GET', route: `${MACHINE}/sessions/{id}/attach`, expect: [401, 404, 404, 404, 404] },
  { method: 'GET', route: `${MACHINE}/services`, expect: [401, 404, 404, 200, 200] },
  { method: 'GET', route: SERVICE, expect: [401, 404, 404, 200, 200] },
  {
    method: 'PUT',
    route: SERVICE,
    body: { command: 'sleep', args: ['1000'] },
    expect: [401, 404, 404, 200, 200],
  },
  {
    method: 'DELETE',
    route: SERVICE,
    expect: [401, 404, 404, 204, 204],
    async prepare() {
      const name = `doomed-${unique()}`;
      await clients.owner.request('PUT', `/api/v1/orgs/acme/machines/owned/services/${name}`, {
        command: 'true',
      });
      return { path: `/api/v1/orgs/acme/machines/owned/services/${name}` };
    },
  },
  ...(['start', 'stop', 'restart', 'logs'] as const).map(
    (action): Case => ({
      method: action === 'logs' ? 'GET' : 'POST',
      route: `${SERVICE}/${action}`,
      expect: [401, 404, 404, 503, 503],
    }),
  ),
];

// Public by design, checked in the bad-input and server tests.
// The machine-URL sign-in redirect is checked in gateway/gateway.test.ts.
const PUBLIC_ROUTES = [
  'POST /api/v1/auth/signup',
  'POST /api/v1/auth/login',
  'GET /api/v1/app-auth',
];

/** A throwaway extra session for `actor`. */
async function signIn(actor: ActorName): Promise<string> {
  const email = clients[actor].user?.email;
  const login = await server
    .client()
    .post('/api/v1/auth/login', { email, password: 'correct horse battery' });
  return /snapvm_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1] ?? '';
}

function concretePath(route: string): string {
  return route
    .replace('{org}', 'acme')
    .replace('{machine}', 'owned')
    .replace('{userId}', crypto.randomUUID())
    .replace('{id}', crypto.randomUUID())
    .replace('{token}', 'x')
    .replace('{service}', 'web');
}

describe('authorization matrix', () => {
  before(async () => {
    server = await startTestServer();
    clients.anonymous = server.client();
    clients.owner = await server.signUp('owner');
    clients.outsider = await server.signUp('outsider');
    await clients.owner.post('/api/v1/orgs', { slug: 'acme', name: 'Acme' });
    await clients.outsider.post('/api/v1/orgs', { slug: 'elsewhere', name: 'Elsewhere' });
    for (const role of ['admin', 'member'] as const) {
      const user = await server.signUp(role);
      const inv = await clients.owner.post('/api/v1/orgs/acme/invitations', {
        email: user.user.email,
        role,
      });
      await user.post(`/api/v1/invitations/${inv.body.token}/accept`);
      clients[role] = user;
    }
    founder = await server.signUp('founder');
    await founder.post('/api/v1/orgs', { slug: 'side', name: 'Side' });
    await clients.owner.post('/api/v1/orgs/acme/machines', { name: 'owned' });
    await clients.owner.request('PUT', '/api/v1/orgs/acme/machines/owned/services/web', {
      command: 'sleep',
      args: ['1000'],
    });
  });
  after(() => server?.close());

  test('the matrix covers every endpoint in the OpenAPI document', async () => {
    const doc = (await server.client().get('/api/v1/openapi.json')).body;
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const covered = [...cases.map((c) => `${c.method} ${c.route}`), ...PUBLIC_ROUTES];
    assert.deepEqual(
      documented.filter((e) => !covered.includes(e)),
      [],
      'not in the matrix',
    );
    // @fastify/swagger leaves WebSocket routes out of the document.
    const webSockets = ['GET /api/v1/orgs/{org}/machines/{machine}/sessions/{id}/attach'];
    assert.deepEqual(
      covered.filter((e) => !documented.includes(e) && !webSockets.includes(e)),
      [],
      'not documented',
    );
  });

  for (const c of cases) {
    test(`${c.method} ${c.route}${c.note ? ` (${c.note})` : ''}`, async () => {
      const actual: number[] = [];
      for (const actor of ACTORS) {
        const prepared = (await c.prepare?.(actor)) ?? {};
        let client: ApiClient = clients[actor];
        if (c.route === '/api/v1/auth/logout' && actor !== 'anonymous')
          client = server.client({ session: await signIn(actor) }); // keep the fixture's own
        const res = await client.request(
          c.method,
          prepared.path ?? concretePath(c.route),
          prepared.body ?? c.body,
        );
        assert.notEqual(res.status, 500, `${actor}: ${res.text}`);
        actual.push(res.status);
      }
      assert.deepEqual(
        Object.fromEntries(ACTORS.map((a, i) => [a, actual[i]])),
        Object.fromEntries(ACTORS.map((a, i) => [a, c.expect[i]])),
      );
    });
  }
});
