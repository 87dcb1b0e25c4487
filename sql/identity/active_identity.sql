-- This backend's identity as it holds right now (see lake_internal.session_identity): the row
-- counts only with the nonce the lake put in this session's lake.identity_nonce setting and before
-- the key it came from expires (revoking a key or disabling a user deletes the rows it made); a
-- part established for one transaction counts only inside that transaction. The one definition that
-- lake_internal._identity(), lake.current_user_id() and lake.has_scope() read. Its functions and
-- operators were resolved when it was made, and it reads lake_internal.session_identity with its
-- owner's rights, so a session may read it (it shows that session's own identity only) without
-- being able to bend it with a search_path of its own; security_barrier keeps a caller's own
-- functions from seeing other backends' rows before the view's conditions have removed them.
CREATE VIEW lake.active_identity WITH (security_barrier) AS
SELECT CASE WHEN x.act_ok THEN s.acting_user
            WHEN x.auth_ok AND s.principal_kind = 'user' THEN s.principal END AS user_id,
       CASE WHEN x.auth_ok AND s.principal_kind = 'service' THEN s.principal END AS service,
       CASE WHEN x.auth_ok THEN s.principal END AS principal,
       CASE WHEN x.auth_ok THEN s.key_id END AS key_id,
       s.scopes,
       'read' = ANY (s.scopes) AS can_read,
       'write' = ANY (s.scopes) AS can_write
  FROM lake_internal.session_identity AS s,
       LATERAL (SELECT s.acting_user IS NOT NULL
                       AND (s.act_scope = 'session'
                            OR s.act_xact = pg_current_xact_id_if_assigned()) AS act_ok,
                       s.principal IS NOT NULL
                       AND (s.auth_scope = 'session'
                            OR s.auth_xact = pg_current_xact_id_if_assigned()) AS auth_ok) AS x
 WHERE s.backend_pid = pg_backend_pid()
   AND s.nonce::text = current_setting('lake.identity_nonce', true)
   AND (s.expires_at IS NULL OR s.expires_at > now())
   AND (x.act_ok OR x.auth_ok);
ALTER VIEW lake.active_identity OWNER TO lake_owner;
GRANT SELECT ON lake.active_identity TO lake_admin, lake_read, lake_write;

COMMENT ON VIEW lake.active_identity IS
    'This session''s identity as it holds now (read by lake.current_user_id()).';
COMMENT ON COLUMN lake.active_identity.user_id IS
    'The lake user this session acts for (what lake.current_user_id() returns).';
COMMENT ON COLUMN lake.active_identity.service IS
    'The service that authenticated, when a service''s key did.';
COMMENT ON COLUMN lake.active_identity.principal IS
    'The user or service that authenticated with a key.';
COMMENT ON COLUMN lake.active_identity.key_id IS
    'The key that authenticated it (cert:<serial> for a service''s TLS client certificate).';
COMMENT ON COLUMN lake.active_identity.scopes IS 'The identity''s scopes: read and/or write.';
COMMENT ON COLUMN lake.active_identity.can_read IS 'Whether the scopes include read.';
COMMENT ON COLUMN lake.active_identity.can_write IS 'Whether the scopes include write.';
