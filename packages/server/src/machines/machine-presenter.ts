import {
  type DesiredState,
  type Machine,
  type MachineSize,
  type MachineState,
  machineSizes,
  type RuntimeType,
  type UrlAccess,
} from '@snapvm/protocol';
import { presentUser } from '../auth/user-presenter.js';
import { isoColumn } from '../db/values.js';
import { EFFECTIVE_IDLE_COLUMNS, type EffectiveIdleRow, presentIdle } from './idle-settings.js';

export interface MachineRow extends EffectiveIdleRow {
  id: string;
  org_id: string;
  owner_id: string | null;
  name: string;
  size: MachineSize;
  region: string;
  runtime: RuntimeType;
  desired_state: DesiredState;
  observed_state: MachineState;
  http_port: number;
  url_access: UrlAccess;
  /** ISO 8601 already (isoColumn). */
  created_at: string;
  updated_at: string;
  owner_email: string | null;
  owner_name: string | null;
}

/**
 * Select list for MachineRow from
 * `machines m JOIN orgs o ON o.id = m.org_id LEFT JOIN users u ON u.id = m.owner_id`.
 */
export const MACHINE_COLUMNS = `m.id, m.org_id, m.owner_id, m.name, m.size, m.region, m.runtime,
  m.desired_state, m.observed_state, m.http_port, m.url_access, ${EFFECTIVE_IDLE_COLUMNS},
  ${isoColumn('m.created_at')} AS created_at, ${isoColumn('m.updated_at')} AS updated_at,
  u.email AS owner_email, u.name AS owner_name`;

export interface UrlSettings {
  publicUrl: string;
  appsDomain: string;
}

/** `<machine>--<org>.<apps domain>` on the scheme and port the server is reached on. */
export function machineAppUrl(machine: string, org: string, urls: UrlSettings): string {
  const base = new URL(urls.publicUrl);
  const port = base.port ? `:${base.port}` : '';
  return `${base.protocol}//${machine}--${org}.${urls.appsDomain}${port}/`;
}

export function presentMachine(row: MachineRow, orgSlug: string, urls: UrlSettings): Machine {
  return {
    id: row.id,
    name: row.name,
    state: row.observed_state,
    desiredState: row.desired_state,
    size: row.size,
    limits: { ...machineSizes[row.size] },
    region: row.region,
    runtime: row.runtime,
    owner: presentUser(row.owner_id, row.owner_email, row.owner_name),
    httpPort: row.http_port,
    urlAccess: row.url_access,
    idle: presentIdle(row),
    urls: { app: machineAppUrl(row.name, orgSlug, urls) },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
