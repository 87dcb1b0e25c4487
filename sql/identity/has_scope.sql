-- Whether this session's identity may read ('read') or write ('write') a lake user's data. The
-- restrictive policies scope_insert/update/delete of every user_data table call it once per
-- writing statement, and the lake's own ingest paths before they store anything. Like
-- lake.current_user_id(), it reads only lake.active_identity and needs no rights of its own; on a
-- hot standby, the session's signed token (lake.token_identity()).
CREATE FUNCTION lake.has_scope(scope text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_scope ALIAS FOR scope;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN coalesce((SELECT t.user_id IS NOT NULL AND p_scope = ANY (t.scopes)
                           FROM lake.token_identity() AS t), false);
    END IF;
    RETURN coalesce((SELECT a.user_id IS NOT NULL
                            AND CASE p_scope WHEN 'read' THEN a.can_read
                                             WHEN 'write' THEN a.can_write END
                       FROM lake.active_identity AS a), false);
END
$$;
ALTER FUNCTION lake.has_scope(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.has_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.has_scope(text) TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.has_scope(text) IS
    'Whether this session''s identity has the scope (read or write).';
