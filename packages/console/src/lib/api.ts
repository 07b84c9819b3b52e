import { requestJson } from './api-client.js';

// Typed calls for the endpoints of /work/shared/API.md. Shapes list the fields the contract
// fixes; servers may send more, which the console ignores.

export type Role = 'owner' | 'admin' | 'member';
export const ROLES: readonly Role[] = ['owner', 'admin', 'member'];

export interface User {
  id: string;
  email: string;
  name: string;
}

export interface OrgMembership {
  slug: string;
  name: string;
  role: Role;
}

export interface Me {
  user: User;
  orgs: OrgMembership[];
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Member {
  user: User;
  role: Role;
}

export interface Invitation {
  id: string;
  token: string;
  url: string;
}

export interface ApiToken {
  id: string;
  name: string;
  createdAt?: string;
  lastUsedAt?: string | null;
}

export interface NewApiToken extends ApiToken {
  token: string;
}

export type MachineState =
  | 'creating'
  | 'starting'
  | 'started'
  | 'suspended'
  | 'stopping'
  | 'stopped'
  | 'destroying'
  | 'destroyed'
  | 'failed';

export type UrlAccess = 'private' | 'org' | 'public';

/** null when the owner's account is gone; a bare id from older servers. */
export type MachineOwner = User | string | null;

export interface Machine {
  id: string;
  name: string;
  state: MachineState;
  size?: string | null;
  region?: string | null;
  runtime?: string | null;
  owner: MachineOwner;
  urls?: { app?: string | null };
  urlAccess?: UrlAccess;
  createdAt?: string;
}

export interface MachineEvent {
  id?: string;
  /** `desired`: someone (or the idle timer) asked for a state; `observed`: the machine got there. */
  kind?: 'desired' | 'observed';
  at?: string;
  createdAt?: string;
  from?: string | null;
  to?: string | null;
  fromState?: string | null;
  toState?: string | null;
  cause?: string | null;
  reason?: string | null;
  actor?: User | string | null;
}

export interface AuditEntry {
  id?: string;
  at?: string;
  createdAt?: string;
  action: string;
  actor?: User | string | null;
  target?: string | { type: string; id: string | null } | null;
  targetType?: string | null;
  targetId?: string | null;
  details?: unknown;
}

export interface TerminalSession {
  id: string;
  command?: string | string[];
  createdAt?: string;
  clients?: number;
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

  createOrg: (body: { slug: string; name: string }) =>
    requestJson<OrgMembership>('POST', '/api/v1/orgs', body),
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
  updateMachine: (org: string, machine: string, body: { urlAccess?: UrlAccess }) =>
    requestJson<Machine>('PATCH', machinePath(org, machine), body),
  machineAction: (org: string, machine: string, action: 'start' | 'stop' | 'suspend') =>
    requestJson<unknown>('POST', `${machinePath(org, machine)}/${action}`),
  destroyMachine: (org: string, machine: string) =>
    requestJson<unknown>('DELETE', machinePath(org, machine)),
  listMachineEvents: (org: string, machine: string) =>
    requestJson<Page<MachineEvent>>('GET', `${machinePath(org, machine)}/events`),

  listSessions: (org: string, machine: string) =>
    requestJson<Page<TerminalSession>>('GET', `${machinePath(org, machine)}/sessions`),
  createSession: (org: string, machine: string, body: { cols?: number; rows?: number }) =>
    requestJson<TerminalSession>('POST', `${machinePath(org, machine)}/sessions`, body),
  endSession: (org: string, machine: string, id: string) =>
    requestJson<void>('DELETE', `${machinePath(org, machine)}/sessions/${enc(id)}`),
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

export function ownerId(owner: MachineOwner): string | null {
  if (owner === null) return null;
  return typeof owner === 'string' ? owner : owner.id;
}

export function ownerLabel(owner: MachineOwner): string {
  if (owner === null) return 'former member';
  return typeof owner === 'string' ? owner : owner.name || owner.email;
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
