-- Replace a key: a new key for the same principal with the same scopes, label and lifetime, and the
-- old one revoked at once (the sessions it authenticated lose their identity). Returns the new key
-- (shown once). Administrators only; audited.
CREATE FUNCTION lake.rotate_api_key(id text)
RETURNS TABLE (key_id text, api_key text, scopes text[], expires_at timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_key_id ALIAS FOR id;
    k     lake.api_keys;
    v_new record;
BEGIN
    SELECT * INTO k FROM lake.api_keys AS a WHERE a.id = p_key_id FOR UPDATE;
    IF k.id IS NULL OR k.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no active API key %L', left(p_key_id, 100)),
            HINT = 'A revoked key cannot be rotated; create a new one.';
    END IF;
    v_new := lake_internal._new_api_key(k.principal, k.scopes,
                               now() + (k.expires_at - k.created_at), k.label);
    UPDATE lake.api_keys AS a SET revoked_at = now(), replaced_by = (v_new.key).id
     WHERE a.id = k.id;
    DELETE FROM lake_internal.session_identity AS s WHERE s.key_id = k.id;
    PERFORM lake_internal._audit('key.rotate', k.id,
                        jsonb_build_object('principal', k.principal, 'new_key_id',
                                           (v_new.key).id));
    RETURN QUERY SELECT (v_new.key).id, v_new.api_key, (v_new.key).scopes,
                        (v_new.key).expires_at;
END
$$;
ALTER FUNCTION lake.rotate_api_key(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.rotate_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.rotate_api_key(text) TO lake_admin;

COMMENT ON FUNCTION lake.rotate_api_key(text) IS
    'Replace an API key by a new one with the same scopes; the old one stops working now. '
    'Administrators.';
