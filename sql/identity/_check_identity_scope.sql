-- Refuse an identity scope other than 'transaction' (it ends with the transaction: a pooled
-- connection never carries it into the next one) or 'session' (until lake.reset_identity() or
-- the end of the session).
CREATE FUNCTION lake_internal._check_identity_scope(p_scope text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_scope IS NULL OR p_scope NOT IN ('transaction', 'session') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'LK011',
            MESSAGE = format('invalid identity scope %L', left(p_scope, 100)),
            HINT = 'Use ''transaction'' (the default) or ''session''.';
    END IF;
    RETURN p_scope;
END
$$;
ALTER FUNCTION lake_internal._check_identity_scope(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._check_identity_scope(text) FROM PUBLIC;
