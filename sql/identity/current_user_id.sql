-- The lake user whose rows this session may read (and so update and delete): the user of its
-- identity (lake.active_identity) when that identity has the read scope; else NULL. The RLS
-- policy user_isolation calls this as (SELECT lake.current_user_id()), once per query, so it is
-- cheap: PL/pgSQL (its plan is kept for the session; an SQL function's would be made again for
-- every query), and not SECURITY DEFINER (no role to switch): it reads only the view, which any
-- session may read for itself. A write-only key ingests through the lake's own paths.
-- On a hot standby, which holds no session identities (it cannot write), the identity is the
-- one of the signed token the session set (lake.token_identity()).
CREATE FUNCTION lake.current_user_id()
RETURNS text
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED  -- pg_backend_pid() differs in a parallel worker
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN (SELECT t.user_id FROM lake.token_identity() AS t WHERE 'read' = ANY (t.scopes));
    END IF;
    RETURN (SELECT a.user_id FROM lake.active_identity AS a WHERE a.can_read);
END
$$;
ALTER FUNCTION lake.current_user_id() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_user_id() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.current_user_id() IS
    'The lake user of this session (NULL without one or without the read scope); the RLS policies '
    'use it.';
