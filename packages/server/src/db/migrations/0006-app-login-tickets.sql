-- Machine-URL sign-in tickets (gateway/app-auth.ts): single use, one minute. Kept here rather
-- than in the issuing process, so that any server behind a balancer can redeem one, and a
-- restart between the redirect and its redemption loses nothing.
CREATE TABLE app_login_tickets (
  ticket_hash text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users ON DELETE CASCADE,
  session_id uuid NOT NULL REFERENCES auth_sessions ON DELETE CASCADE,
  hostname text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX app_login_tickets_expiry ON app_login_tickets (expires_at);

-- Only the gateway, acting as the system, issues and redeems them.
ALTER TABLE app_login_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE app_login_tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY app_login_tickets_system ON app_login_tickets
  USING (snapvm_is_system()) WITH CHECK (snapvm_is_system());
