-- The lake user of this session, as established by the lake itself (lake.act_as, and later
-- lake.authenticate). A row in lake.session_identity counts only together with the random nonce
-- that the establishing function stored in this session's lake.identity_nonce setting, and, for
-- the default transaction scope, only inside the transaction that established it; SET or
-- set_config alone therefore never yields an identity. The RLS policy user_isolation calls this
-- as (SELECT lake.current_user_id()) so it runs once per query.
CREATE FUNCTION lake.current_user_id()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL RESTRICTED  -- pg_backend_pid() differs in a parallel worker
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.user_id
      FROM lake.session_identity AS s
     WHERE s.backend_pid = pg_backend_pid()
       AND s.nonce::text = current_setting('lake.identity_nonce', true)
       AND (s.scope = 'session' OR s.xact_start = now())
$$;
ALTER FUNCTION lake.current_user_id() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_user_id() TO lake_admin, lake_app;
