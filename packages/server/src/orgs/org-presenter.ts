import type { Org, Role } from '@snapvm/protocol';
import { iso } from '../db/values.js';

export interface OrgRow {
  id: string;
  slug: string;
  name: string;
  role: Role;
  created_at: Date | string;
  plan_id: string;
  plan_name: string;
  max_machines: number;
  idle_suspend_seconds: number | null;
  idle_stop_seconds: number | null;
}

/** Columns for presentOrg from `orgs o JOIN memberships m JOIN plans p`. */
export const ORG_COLUMNS = `o.id, o.slug, o.name, m.role, o.created_at, p.id AS plan_id,
  p.name AS plan_name, p.max_machines, o.idle_suspend_seconds, o.idle_stop_seconds`;

export function presentOrg(row: OrgRow): Org {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    role: row.role,
    plan: { id: row.plan_id, name: row.plan_name, maxMachines: row.max_machines },
    idle: {
      suspendAfterSeconds: row.idle_suspend_seconds,
      stopAfterSeconds: row.idle_stop_seconds,
    },
    createdAt: iso(row.created_at),
  };
}
