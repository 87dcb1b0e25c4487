-- Whether this session's identity may read ('read') or write ('write') user data. The
-- restrictive policies scope_* of every user_data table call it once per query, and the lake's
-- own ingest paths before they store anything.
CREATE FUNCTION lake.has_scope(p_scope text)
RETURNS boolean
LANGUAGE sql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT p_scope = ANY (i.scopes) AND i.user_id IS NOT NULL
                       FROM lake.current_identity() AS i), false)
$$;
ALTER FUNCTION lake.has_scope(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.has_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.has_scope(text) TO lake_admin, lake_app;
