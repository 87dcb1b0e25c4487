-- Revoke a key: it stops authenticating, and sessions it authenticated lose their identity (and
-- whom they acted for) with their next statement. Administrators only; audited. Revoking a
-- revoked key changes nothing.
CREATE FUNCTION lake.revoke_api_key(id text)
RETURNS timestamptz
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_key_id ALIAS FOR id;
    k lake.api_keys;
BEGIN
    SELECT * INTO k FROM lake.api_keys AS a WHERE a.id = p_key_id FOR UPDATE;
    IF k.id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no API key %L', left(p_key_id, 100));
    END IF;
    IF k.revoked_at IS NULL THEN
        UPDATE lake.api_keys AS a SET revoked_at = now() WHERE a.id = k.id
        RETURNING * INTO k;
        DELETE FROM lake_internal.session_identity AS s WHERE s.key_id = k.id;
        PERFORM lake_internal._audit('key.revoke', k.id, jsonb_build_object('principal', k.principal));
    END IF;
    RETURN k.revoked_at;
END
$$;
ALTER FUNCTION lake.revoke_api_key(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.revoke_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.revoke_api_key(text) TO lake_admin;

COMMENT ON FUNCTION lake.revoke_api_key(text) IS
    'Revoke an API key; the sessions it authenticated lose their identity. Administrators.';
