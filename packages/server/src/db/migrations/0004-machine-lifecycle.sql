-- The reconciler's lease: a server process acts on a machine only while it holds the row's
-- lease, so two processes on one database never drive the same machine at once. A lease that
-- is not renewed (its holder crashed) expires and the next sweep takes it over.
ALTER TABLE machines ADD COLUMN lease_owner text;
ALTER TABLE machines ADD COLUMN lease_expires_at timestamptz;
-- Last activity seen by the idle monitor, written coarsely (not per request) so that a
-- restarted server, or another replica, does not idle a machine that was just in use.
ALTER TABLE machines ADD COLUMN last_activity_at timestamptz;
