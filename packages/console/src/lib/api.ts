// Typed calls for the endpoints of the API contract. Shapes come from @snapvm/protocol, the
// schemas the server validates and documents with, so the two cannot drift.

import type {
  AuditEntry,
  Machine,
  MachineEvent,
  MachineState,
  Me,
  Member,
  Org,
  PatchMachineBody,
  PatchOrgBody,
  Role,
  Service,
  ServiceDefinitionInput,
  SignInSession,
  Token,
  UrlAccess,
  User,
} from '@snapvm/protocol';
import { machineSizeSchema, machineSizes, roleSchema, runtimeTypeSchema } from '@snapvm/protocol';
import { requestJson, requestStream } from './api-client.js';

export type {
  AuditEntry,
  Machine,
  MachineEvent,
  MachineState,
  Me,
  Member,
  Org,
  Role,
  Service,
  ServiceDefinitionInput,
  UrlAccess,
  User,
};

export const ROLES: readonly Role[] = roleSchema.options;
export const MACHINE_SIZES: readonly string[] = machineSizeSchema.options;
export const RUNTIMES: readonly string[] = runtimeTypeSchema.options;

/** "small — 1 CPU, 1 GiB memory, 5 GiB disk" */
export function sizeLabel(size: string): string {
  const limits = machineSizes[size as keyof typeof machineSizes];
  if (!limits) return size;
  const memory =
    limits.memoryMiB >= 1024 ? `${limits.memoryMiB / 1024} GiB` : `${limits.memoryMiB} MiB`;
  return `${size} — ${limits.cpu} CPU, ${memory} memory, ${limits.diskGiB} GiB disk`;
}

export type OrgMembership = Me['orgs'][number];

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type ApiToken = Token;
export type NewApiToken = Token & { token: string };

export interface Invitation {
  id: string;
  token: string;
  url: string;
}

/** Terminal sessions are relayed from the machine's agent; only the id is relied on. */
export interface TerminalSession {
  id: string;
  createdAt?: string;
  state?: 'running' | 'exited';
  exitCode?: number | null;
  attachedClients?: number;
}

const enc = encodeURIComponent;
const orgPath = (org: string) => `/api/v1/orgs/${enc(org)}`;
const machinePath = (org: string, machine: string) => `${orgPath(org)}/machines/${enc(machine)}`;

export const api = {
  signUp: (body: { email: string; password: string; name: string }) =>
    requestJson<User>('POST', '/api/v1/auth/signup', body),
  signIn: (body: { email: string; password: string }) =>
    requestJson<unknown>('POST', '/api/v1/auth/login', body),
  signOut: () => requestJson<void>('POST', '/api/v1/auth/logout'),
  me: () => requestJson<Me>('GET', '/api/v1/me'),

  listTokens: () => requestJson<Page<ApiToken>>('GET', '/api/v1/me/tokens'),
  createToken: (name: string) => requestJson<NewApiToken>('POST', '/api/v1/me/tokens', { name }),
  revokeToken: (id: string) => requestJson<void>('DELETE', `/api/v1/me/tokens/${enc(id)}`),
  listSignInSessions: () => requestJson<Page<SignInSession>>('GET', '/api/v1/me/sessions'),
  revokeSignInSession: (id: string) =>
    requestJson<void>('DELETE', `/api/v1/me/sessions/${enc(id)}`),

  createOrg: (body: { slug: string; name: string }) =>
    requestJson<OrgMembership>('POST', '/api/v1/orgs', body),
  getOrg: (org: string) => requestJson<Org>('GET', orgPath(org)),
  updateOrg: (org: string, body: PatchOrgBody) => requestJson<Org>('PATCH', orgPath(org), body),
  listMembers: (org: string) => requestJson<Page<Member>>('GET', `${orgPath(org)}/members`),
  changeRole: (org: string, userId: string, role: Role) =>
    requestJson<Member>('PATCH', `${orgPath(org)}/members/${enc(userId)}`, { role }),
  removeMember: (org: string, userId: string) =>
    requestJson<void>('DELETE', `${orgPath(org)}/members/${enc(userId)}`),
  invite: (org: string, body: { email: string; role: Role }) =>
    requestJson<Invitation>('POST', `${orgPath(org)}/invitations`, body),
  acceptInvitation: (token: string) =>
    requestJson<{ org?: OrgMembership | string; slug?: string } | undefined>(
      'POST',
      `/api/v1/invitations/${enc(token)}/accept`,
    ),
  listAudit: (org: string, cursor: string | null) =>
    requestJson<Page<AuditEntry>>(
      'GET',
      `${orgPath(org)}/audit${cursor ? `?cursor=${enc(cursor)}` : ''}`,
    ),

  listMachines: (org: string) => requestJson<Page<Machine>>('GET', `${orgPath(org)}/machines`),
  getMachine: (org: string, machine: string) =>
    requestJson<Machine>('GET', machinePath(org, machine)),
  createMachine: (
    org: string,
    body: { name: string; size?: string; region?: string; runtime?: string },
  ) => requestJson<Machine>('POST', `${orgPath(org)}/machines`, body),
  updateMachine: (org: string, machine: string, body: PatchMachineBody) =>
    requestJson<Machine>('PATCH', machinePath(org, machine), body),
  machineAction: (org: string, machine: string, action: 'start' | 'stop' | 'suspend') =>
    requestJson<unknown>('POST', `${machinePath(org, machine)}/${action}`),
  destroyMachine: (org: string, machine: string) =>
    requestJson<unknown>('DELETE', machinePath(org, machine)),
  listMachineEvents: (org: string, machine: string, cursor: string | null = null) =>
    requestJson<Page<MachineEvent>>(
      'GET',
      `${machinePath(org, machine)}/events?limit=100${cursor ? `&cursor=${enc(cursor)}` : ''}`,
    ),

  listSessions: (org: string, machine: string) =>
    requestJson<Page<TerminalSession>>('GET', `${machinePath(org, machine)}/sessions`),
  createSession: (org: string, machine: string, body: { cols?: number; rows?: number }) =>
    requestJson<TerminalSession>('POST', `${machinePath(org, machine)}/sessions`, body),
  endSession: (org: string, machine: string, id: string) =>
    requestJson<void>('DELETE', `${machinePath(org, machine)}/sessions/${enc(id)}`),

  listServices: (org: string, machine: string) =>
    requestJson<Page<Service>>('GET', `${machinePath(org, machine)}/services`),
  putService: (org: string, machine: string, name: string, definition: ServiceDefinitionInput) =>
    requestJson<Service>('PUT', `${machinePath(org, machine)}/services/${enc(name)}`, definition),
  deleteService: (org: string, machine: string, name: string) =>
    requestJson<void>('DELETE', `${machinePath(org, machine)}/services/${enc(name)}`),
  serviceAction: (
    org: string,
    machine: string,
    name: string,
    action: 'start' | 'stop' | 'restart',
  ) => requestJson<Service>('POST', `${machinePath(org, machine)}/services/${enc(name)}/${action}`),
  /** The last `tail` lines, then (where the server supports it) new output as it comes. */
  serviceLogs: (org: string, machine: string, name: string, tail: number, signal: AbortSignal) =>
    requestStream(
      `${machinePath(org, machine)}/services/${enc(name)}/logs?tail=${tail}&follow=1`,
      signal,
    ),
};

/** The WebSocket URL for attaching to a terminal session, on the page's own origin. */
export function attachUrl(
  location: { protocol: string; host: string },
  org: string,
  machine: string,
  session: string,
  query: Record<string, string | number>,
): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const search = new URLSearchParams(
    Object.entries(query).map(([key, value]) => [key, String(value)]),
  ).toString();
  return `${scheme}//${location.host}${machinePath(org, machine)}/sessions/${enc(session)}/attach${search ? `?${search}` : ''}`;
}

export function ownerId(owner: Machine['owner']): string | null {
  return owner?.id ?? null;
}

/** A machine whose owner's account is gone still shows who it belonged to, as far as known. */
export function ownerLabel(owner: Machine['owner']): string {
  return owner ? owner.name || owner.email : 'former member';
}

/** Admins and owners see and operate every machine of the org; members only their own. */
export function canManageOrg(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

export const TRANSITIONAL_STATES: ReadonlySet<MachineState> = new Set([
  'creating',
  'starting',
  'stopping',
  'destroying',
]);
