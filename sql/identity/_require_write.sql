-- Refuse (LK014) unless this session's identity may write user data: the check of the lake's own
-- ingest paths, which store rows as the owner and so are not subject to the policies scope_*.
CREATE FUNCTION lake_internal._require_write()
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT lake.has_scope('write') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK014',
            MESSAGE = 'this identity may not write: its API key lacks the write scope',
            HINT = 'Use a key with the write scope; lake.current_identity() shows the scopes.';
    END IF;
END
$$;
ALTER FUNCTION lake_internal._require_write() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._require_write() FROM PUBLIC;
