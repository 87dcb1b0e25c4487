-- The lake user whose rows this session may read (and so update and delete): the user of its
-- identity (lake.active_identity) when that identity has the read scope; else NULL. The RLS
-- policy user_isolation calls this as (SELECT lake.current_user_id()), once per query, so it is
-- PL/pgSQL with a single query: its plan is kept for the session (an SQL function's would be
-- made again for every query). A write-only key ingests through the lake's own paths.
CREATE FUNCTION lake.current_user_id()
RETURNS text
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT a.user_id FROM lake.active_identity AS a WHERE 'read' = ANY (a.scopes));
END
$$;
ALTER FUNCTION lake.current_user_id() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_user_id() TO lake_admin, lake_app;
