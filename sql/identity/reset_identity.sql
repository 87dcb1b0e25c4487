-- Forget the lake user of this session (e.g. before a pooled connection is handed back).
CREATE FUNCTION lake.reset_identity()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
    PERFORM set_config('lake.identity_nonce', '', false);
END
$$;
ALTER FUNCTION lake.reset_identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.reset_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.reset_identity() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.reset_identity() IS 'Forget this session''s identity.';
