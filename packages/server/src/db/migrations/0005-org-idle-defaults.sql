-- Idle periods are org defaults that each machine may override (docs/lifecycle.md, "Idle").
-- A NULL period means that tier is off.
ALTER TABLE orgs ADD COLUMN idle_suspend_seconds integer CHECK (idle_suspend_seconds > 0);
ALTER TABLE orgs ADD COLUMN idle_stop_seconds integer CHECK (idle_stop_seconds > 0);
-- SQL cannot see the server's SNAPVM_IDLE_* settings, so orgs that exist already get the
-- documented defaults; orgs created from now on get the server's configured ones.
UPDATE orgs SET idle_suspend_seconds = 300, idle_stop_seconds = 3600;

-- A machine either inherits a tier from its org (so changing the org default changes it) or
-- overrides it with its own period. Machines that exist already keep the explicit values they
-- were created with, hence false for them and true only for machines created from now on.
ALTER TABLE machines ADD COLUMN idle_suspend_inherit boolean NOT NULL DEFAULT false;
ALTER TABLE machines ADD COLUMN idle_stop_inherit boolean NOT NULL DEFAULT false;
ALTER TABLE machines ALTER COLUMN idle_suspend_inherit SET DEFAULT true;
ALTER TABLE machines ALTER COLUMN idle_stop_inherit SET DEFAULT true;
-- An inheriting machine's own period is meaningless; keeping it NULL leaves one truth.
ALTER TABLE machines ADD CONSTRAINT machines_idle_suspend_inherits
  CHECK (NOT idle_suspend_inherit OR idle_suspend_seconds IS NULL);
ALTER TABLE machines ADD CONSTRAINT machines_idle_stop_inherits
  CHECK (NOT idle_stop_inherit OR idle_stop_seconds IS NULL);
