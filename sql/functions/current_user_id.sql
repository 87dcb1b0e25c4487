-- The lake user of this session, as established by the lake itself (lake.authenticate with a
-- user's key, or lake.act_as): see lake.current_identity(). NULL without one. The RLS policy
-- user_isolation calls this as (SELECT lake.current_user_id()) so it runs once per query.
CREATE FUNCTION lake.current_user_id()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.user_id FROM lake.current_identity() AS i
$$;
ALTER FUNCTION lake.current_user_id() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_user_id() TO lake_admin, lake_app;
