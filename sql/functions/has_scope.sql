-- Whether this session's identity may read ('read') or write ('write') a lake user's data. The
-- restrictive policies scope_insert/update/delete of every user_data table call it once per
-- writing statement, and the lake's own ingest paths before they store anything.
CREATE FUNCTION lake.has_scope(p_scope text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT a.user_id IS NOT NULL AND p_scope = ANY (a.scopes)
                       FROM lake.active_identity AS a), false);
END
$$;
ALTER FUNCTION lake.has_scope(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.has_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.has_scope(text) TO lake_admin, lake_app;
