-- The identity of this session as the lake established it (see lake.session_identity): the lake
-- user whose data it may touch (user_id), the service acting for that user, the principal that
-- authenticated and with which key, and the scopes. No row when the session has no identity.
-- A part established for one transaction counts only inside that transaction, and nothing
-- established with an API key outlasts the key's revocation or expiry.
CREATE FUNCTION lake.current_identity()
RETURNS TABLE (user_id text, service text, principal text, key_id text, scopes text[])
LANGUAGE sql
STABLE
PARALLEL RESTRICTED  -- pg_backend_pid() differs in a parallel worker
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v.act_ok THEN s.acting_user
                WHEN v.auth_ok AND s.principal_kind = 'user' THEN s.principal END,
           CASE WHEN v.auth_ok AND s.principal_kind = 'service' THEN s.principal END,
           CASE WHEN v.auth_ok THEN s.principal END,
           CASE WHEN v.auth_ok THEN s.key_id END,
           s.scopes
      FROM lake.session_identity AS s,
           LATERAL (SELECT s.key_id IS NULL
                           OR EXISTS (SELECT FROM lake.api_keys AS k
                                       WHERE k.id = s.key_id AND k.revoked_at IS NULL
                                         AND (k.expires_at IS NULL OR k.expires_at > now()))
                           AS key_ok) AS kv,
           LATERAL (SELECT s.acting_user IS NOT NULL
                           AND (s.act_scope = 'session'
                                OR s.act_xact = pg_current_xact_id_if_assigned()) AS act_ok,
                           s.principal IS NOT NULL
                           AND (s.auth_scope = 'session'
                                OR s.auth_xact = pg_current_xact_id_if_assigned()) AS auth_ok
                   ) AS v
     WHERE s.backend_pid = pg_backend_pid()
       AND s.nonce::text = current_setting('lake.identity_nonce', true)
       AND kv.key_ok
       AND (v.act_ok OR v.auth_ok)
$$;
ALTER FUNCTION lake.current_identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_identity() TO lake_admin, lake_app, lake_auditor;
