-- Make a key for a principal and return its row and the key text (lake_<id>_<secret>), which
-- exists nowhere else afterwards: only the secret's SHA-256 is stored.
CREATE FUNCTION lake_internal._new_api_key(
    p_principal text,
    p_scopes text[],
    p_expires_at timestamptz,
    p_label text,
    OUT key lake.api_keys,
    OUT api_key text
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_secret text := translate(encode(public.gen_random_bytes(32), 'base64'), '+/=', '-_');
BEGIN
    INSERT INTO lake.api_keys (id, principal, secret_sha256, scopes, label, expires_at)
    VALUES (encode(public.gen_random_bytes(8), 'hex'), p_principal,
            public.digest(v_secret, 'sha256'),
            ARRAY(SELECT DISTINCT s FROM unnest(p_scopes) AS s ORDER BY s), p_label, p_expires_at)
    RETURNING * INTO key;
    api_key := 'lake_' || key.id || '_' || v_secret;
END
$$;
ALTER FUNCTION lake_internal._new_api_key(text, text[], timestamptz, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._new_api_key(text, text[], timestamptz, text) FROM PUBLIC;
