-- The identity of this session as the lake established it (lake.active_identity): the lake user
-- whose data it may touch, the service acting for that user, the principal that authenticated
-- and with which key, and the scopes. No row when the session has no identity. On a hot standby:
-- the identity of the session's signed token (lake.token_identity()).
CREATE FUNCTION lake.current_identity()
RETURNS TABLE (user_id text, service text, principal text, key_id text, scopes text[])
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL plans a statement when it first runs it: a standby never plans the view, which
    -- reads an unlogged table (refused during recovery).
    IF pg_is_in_recovery() THEN
        RETURN QUERY SELECT t.user_id, t.service, t.principal, t.key_id, t.scopes
                       FROM lake.token_identity() AS t;
    ELSE
        RETURN QUERY SELECT i.user_id, i.service, i.principal, i.key_id, i.scopes
                       FROM lake.active_identity AS i;
    END IF;
END
$$;
ALTER FUNCTION lake.current_identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_identity() TO lake_admin, lake_read, lake_write, lake_auditor;

COMMENT ON FUNCTION lake.current_identity() IS
    'The whole identity of this session: user, acting service, principal, key, scopes.';
