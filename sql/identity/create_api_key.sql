-- Make an API key for a user or service with scopes read and/or write, optionally expiring.
-- The key is returned once and cannot be shown again. Administrators only; audited (without the
-- key).
CREATE FUNCTION lake.create_api_key(
    principal text,
    key_scopes text[] DEFAULT ARRAY['read', 'write'],
    expires_in interval DEFAULT NULL,
    label text DEFAULT NULL
)
RETURNS TABLE (key_id text, api_key text, scopes text[], expires_at timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_principal ALIAS FOR principal;
    p_scopes ALIAS FOR key_scopes;
    p_expires_in ALIAS FOR expires_in;
    p_label ALIAS FOR label;
    v_new record;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.users AS u WHERE u.id = p_principal) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no lake user %L', left(p_principal, 200)),
            HINT = 'Create it first with lake.create_user().';
    END IF;
    IF p_scopes IS NULL OR cardinality(p_scopes) = 0
       OR NOT p_scopes <@ ARRAY['read', 'write'] OR array_position(p_scopes, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('invalid scopes %s', left(p_scopes::text, 200)),
            HINT = 'Scopes are ''read'' and ''write'', at least one.';
    END IF;
    IF p_expires_in <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('expires_in must be positive, not %s', p_expires_in);
    END IF;
    v_new := lake_internal._new_api_key(p_principal, p_scopes, now() + p_expires_in, p_label);
    PERFORM lake_internal._audit('key.create', (v_new.key).id,
                        jsonb_build_object('principal', p_principal,
                                           'scopes', to_jsonb((v_new.key).scopes),
                                           'expires_at', (v_new.key).expires_at,
                                           'label', p_label));
    RETURN QUERY SELECT (v_new.key).id, v_new.api_key, (v_new.key).scopes,
                        (v_new.key).expires_at;
END
$$;
ALTER FUNCTION lake.create_api_key(text, text[], interval, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.create_api_key(text, text[], interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.create_api_key(text, text[], interval, text) TO lake_admin;

COMMENT ON FUNCTION lake.create_api_key(text, text[], interval, text) IS
    'Make an API key for a user or service (shown once; only its hash is kept). Administrators.';
