-- Tenancy: every org-scoped table has org_id, RLS enabled AND forced, and policies keyed on
-- transaction-local settings that the data layer (db/database.ts) sets first in every
-- transaction: snapvm.user_id, snapvm.org_id, snapvm.org_role, snapvm.system.
-- The server runs requests as a role that is neither superuser nor BYPASSRLS, so a query that
-- forgets `WHERE org_id = ...` still sees only the acting org.

CREATE FUNCTION snapvm_user_id() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('snapvm.user_id', true), '')::uuid $$;
CREATE FUNCTION snapvm_org_id() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('snapvm.org_id', true), '')::uuid $$;
CREATE FUNCTION snapvm_org_role() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('snapvm.org_role', true), '') $$;
CREATE FUNCTION snapvm_is_org_admin() RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT coalesce(snapvm_org_role() IN ('owner', 'admin'), false) $$;
-- System jobs (auth look-ups before a user is known, invitation acceptance, org creation,
-- the reconciler) say so explicitly through db.asSystem().
CREATE FUNCTION snapvm_is_system() RETURNS boolean LANGUAGE sql STABLE
  AS $$ SELECT coalesce(current_setting('snapvm.system', true), '') = 'on' $$;

CREATE TABLE plans (
  id text PRIMARY KEY,
  name text NOT NULL,
  max_machines integer NOT NULL CHECK (max_machines >= 0)
);
INSERT INTO plans (id, name, max_machines) VALUES
  ('free', 'Free', 3), ('team', 'Team', 25), ('scale', 'Scale', 10000);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  name text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE auth_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  ip text,
  user_agent text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE api_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  name text NOT NULL,
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE orgs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE,
  name text NOT NULL,
  plan_id text NOT NULL REFERENCES plans,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  org_id uuid NOT NULL REFERENCES orgs ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs ON DELETE CASCADE,
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  token_hash text NOT NULL UNIQUE,
  invited_by uuid REFERENCES users ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_by uuid REFERENCES users ON DELETE SET NULL
);
CREATE INDEX invitations_org ON invitations (org_id, created_at);
CREATE INDEX invitations_email ON invitations (lower(email));

CREATE TABLE machines (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs ON DELETE CASCADE,
  owner_id uuid REFERENCES users ON DELETE SET NULL,
  name text NOT NULL,
  size text NOT NULL,
  region text NOT NULL,
  runtime text NOT NULL CHECK (runtime IN ('local', 'sprites', 'external')),
  -- The reconciler drives observed_state toward desired_state; both change only through
  -- lifecycle/state-table.ts, and every change is a row in machine_events.
  desired_state text NOT NULL CHECK (desired_state IN ('started', 'suspended', 'stopped', 'destroyed')),
  observed_state text NOT NULL CHECK (observed_state IN ('creating', 'starting', 'started',
    'suspended', 'stopping', 'stopped', 'destroying', 'destroyed', 'failed')),
  http_port integer NOT NULL DEFAULT 8080 CHECK (http_port BETWEEN 1 AND 65535),
  url_access text NOT NULL DEFAULT 'private' CHECK (url_access IN ('private', 'org', 'public')),
  idle_suspend_seconds integer,
  idle_stop_seconds integer,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  state_changed_at timestamptz NOT NULL DEFAULT now()
);
-- A destroyed machine's record stays for its history; its name becomes free again.
CREATE UNIQUE INDEX machines_org_name ON machines (org_id, name) WHERE observed_state <> 'destroyed';
CREATE INDEX machines_org_page ON machines (org_id, created_at, id);
CREATE INDEX machines_owner_page ON machines (org_id, owner_id, created_at, id);

CREATE TABLE machine_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES orgs ON DELETE CASCADE,
  machine_id uuid NOT NULL REFERENCES machines ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_id uuid REFERENCES users ON DELETE SET NULL,
  kind text NOT NULL CHECK (kind IN ('desired', 'observed')),
  from_state text,
  to_state text NOT NULL,
  reason text NOT NULL
);
CREATE INDEX machine_events_machine ON machine_events (machine_id, id);

-- Service definitions are filled by the agent-facing API later; the table exists now so its
-- tenancy is covered from day one.
CREATE TABLE service_definitions (
  org_id uuid NOT NULL REFERENCES orgs ON DELETE CASCADE,
  machine_id uuid NOT NULL REFERENCES machines ON DELETE CASCADE,
  name text NOT NULL,
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, name)
);

CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id uuid REFERENCES orgs ON DELETE CASCADE,
  actor_id uuid REFERENCES users ON DELETE SET NULL,
  action text NOT NULL,
  target_type text NOT NULL,
  target_id text,
  ip text,
  details jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_log_org ON audit_log (org_id, id DESC);

-- Row-level security -------------------------------------------------------------------------

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
-- A user sees themself and, inside an org, that org's members.
CREATE POLICY users_read ON users FOR SELECT USING (
  snapvm_is_system() OR id = snapvm_user_id()
  OR (snapvm_org_id() IS NOT NULL AND id IN (SELECT user_id FROM memberships)));
CREATE POLICY users_create ON users FOR INSERT WITH CHECK (snapvm_is_system());
CREATE POLICY users_update ON users FOR UPDATE
  USING (snapvm_is_system() OR id = snapvm_user_id())
  WITH CHECK (snapvm_is_system() OR id = snapvm_user_id());
CREATE POLICY users_delete ON users FOR DELETE USING (snapvm_is_system());

ALTER TABLE auth_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY auth_sessions_own ON auth_sessions
  USING (snapvm_is_system() OR user_id = snapvm_user_id())
  WITH CHECK (snapvm_is_system() OR user_id = snapvm_user_id());

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_own ON api_tokens
  USING (snapvm_is_system() OR user_id = snapvm_user_id())
  WITH CHECK (snapvm_is_system() OR user_id = snapvm_user_id());

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
-- Outside an org context (listing "my orgs") a user sees the orgs they belong to; inside one,
-- only that org.
CREATE POLICY orgs_read ON orgs FOR SELECT USING (
  snapvm_is_system()
  OR (snapvm_org_id() IS NOT NULL AND id = snapvm_org_id())
  OR (snapvm_org_id() IS NULL AND id IN (SELECT org_id FROM memberships)));
CREATE POLICY orgs_create ON orgs FOR INSERT WITH CHECK (snapvm_is_system());
CREATE POLICY orgs_update ON orgs FOR UPDATE
  USING (snapvm_is_system() OR (id = snapvm_org_id() AND snapvm_is_org_admin()))
  WITH CHECK (snapvm_is_system() OR (id = snapvm_org_id() AND snapvm_is_org_admin()));
CREATE POLICY orgs_delete ON orgs FOR DELETE
  USING (snapvm_is_system() OR (id = snapvm_org_id() AND snapvm_org_role() = 'owner'));

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_read ON memberships FOR SELECT USING (
  snapvm_is_system()
  OR (snapvm_org_id() IS NOT NULL AND org_id = snapvm_org_id())
  OR (snapvm_org_id() IS NULL AND user_id = snapvm_user_id()));
CREATE POLICY memberships_create ON memberships FOR INSERT WITH CHECK (
  snapvm_is_system() OR (org_id = snapvm_org_id() AND snapvm_is_org_admin()));
CREATE POLICY memberships_update ON memberships FOR UPDATE
  USING (snapvm_is_system() OR (org_id = snapvm_org_id() AND snapvm_is_org_admin()))
  WITH CHECK (snapvm_is_system() OR (org_id = snapvm_org_id() AND snapvm_is_org_admin()));
-- Admins remove members; anyone may leave.
CREATE POLICY memberships_delete ON memberships FOR DELETE USING (
  snapvm_is_system() OR (org_id = snapvm_org_id()
    AND (snapvm_is_org_admin() OR user_id = snapvm_user_id())));

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_admins ON invitations
  USING (snapvm_is_system() OR (org_id = snapvm_org_id() AND snapvm_is_org_admin()))
  WITH CHECK (snapvm_is_system() OR (org_id = snapvm_org_id() AND snapvm_is_org_admin()));

ALTER TABLE machines ENABLE ROW LEVEL SECURITY;
ALTER TABLE machines FORCE ROW LEVEL SECURITY;
-- Members see and operate their own machines; admins and owners all of the org's.
CREATE POLICY machines_visible ON machines
  USING (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND (snapvm_is_org_admin() OR owner_id = snapvm_user_id())))
  WITH CHECK (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND (snapvm_is_org_admin() OR owner_id = snapvm_user_id())));

ALTER TABLE machine_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE machine_events FORCE ROW LEVEL SECURITY;
-- Visible exactly when the machine is (the sub-select runs under machines' own policy).
CREATE POLICY machine_events_visible ON machine_events
  USING (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND machine_id IN (SELECT id FROM machines)))
  WITH CHECK (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND machine_id IN (SELECT id FROM machines)));

ALTER TABLE service_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY service_definitions_visible ON service_definitions
  USING (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND machine_id IN (SELECT id FROM machines)))
  WITH CHECK (snapvm_is_system() OR (org_id = snapvm_org_id()
    AND machine_id IN (SELECT id FROM machines)));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
-- Org entries are read by the org's admins; account entries (no org) by their actor, outside
-- any org context. Nobody updates or deletes (no policy, and no grant either).
CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (
  snapvm_is_system()
  OR (org_id = snapvm_org_id() AND snapvm_is_org_admin())
  OR (org_id IS NULL AND snapvm_org_id() IS NULL AND actor_id = snapvm_user_id()));
CREATE POLICY audit_log_write ON audit_log FOR INSERT WITH CHECK (
  snapvm_is_system()
  OR (org_id = snapvm_org_id() AND actor_id = snapvm_user_id())
  OR (org_id IS NULL AND actor_id = snapvm_user_id()));

-- The plan limit counts every live machine of the acting org, including those RLS hides from
-- a member. Narrow by construction: the current org only, a count only.
CREATE FUNCTION snapvm_org_machine_count() RETURNS integer LANGUAGE sql STABLE
  SET snapvm.system = 'on'
  AS $$ SELECT count(*)::int FROM machines
         WHERE org_id = snapvm_org_id() AND observed_state <> 'destroyed' $$;
