-- Resolving a session cookie or API token happens before anyone is known, on every request.
-- These two functions are that system path in one statement (no transaction round trips):
-- they answer only "whose credential is this hash", nothing else.

CREATE FUNCTION snapvm_session_user(hash text)
  RETURNS TABLE (credential_id uuid, user_id uuid) LANGUAGE sql STABLE
  SET snapvm.system = 'on'
  AS $$ SELECT s.id, s.user_id FROM auth_sessions s
         WHERE s.token_hash = hash AND s.revoked_at IS NULL AND s.expires_at > now() $$;

-- last_used_at is refreshed at most once a minute so that reads don't all become writes.
CREATE FUNCTION snapvm_token_user(hash text)
  RETURNS TABLE (credential_id uuid, user_id uuid) LANGUAGE sql VOLATILE
  SET snapvm.system = 'on'
  AS $$
    WITH t AS (
      SELECT a.id, a.user_id, a.last_used_at FROM api_tokens a
       WHERE a.token_hash = hash AND a.revoked_at IS NULL
         AND (a.expires_at IS NULL OR a.expires_at > now())),
    touched AS (
      UPDATE api_tokens SET last_used_at = now() FROM t
       WHERE api_tokens.id = t.id
         AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
    SELECT t.id, t.user_id FROM t $$;
