-- The identity of this session as the lake established it (lake.active_identity): the lake user
-- whose data it may touch, the service acting for that user, the principal that authenticated
-- and with which key, and the scopes. No row when the session has no identity.
CREATE FUNCTION lake.current_identity()
RETURNS TABLE (user_id text, service text, principal text, key_id text, scopes text[])
LANGUAGE sql
STABLE
PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.user_id, i.service, i.principal, i.key_id, i.scopes
      FROM lake.active_identity AS i
$$;
ALTER FUNCTION lake.current_identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.current_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.current_identity() TO lake_admin, lake_read, lake_write, lake_auditor;

COMMENT ON FUNCTION lake.current_identity() IS
    'The whole identity of this session: user, acting service, principal, key, scopes.';
