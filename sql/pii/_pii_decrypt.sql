-- A sealed pii value in clear (the JSON object lake_internal._pii_encrypt encrypted), opened with
-- the key version that sealed it. A value whose key has been retired cannot be opened any more
-- (after a rotation only the audit log's before-images and old archives may still hold one):
-- that raises instead of yielding NULL, which would silently drop the fields.
CREATE FUNCTION lake_internal._pii_decrypt(p_pii bytea)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id  smallint := lake_internal._pii_key_of(p_pii);
    v_key text;
BEGIN
    IF p_pii IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT k.key INTO v_key FROM lake_internal.pii_keys AS k WHERE k.id = v_id;
    IF v_key IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK016',
            MESSAGE = format('personal identifiers sealed with PII key %s cannot be opened: the '
                             'key has been retired', v_id),
            HINT = 'Keys are retired only when no stored row uses them; this value comes from '
                   'an older copy (an archive or an audit before-image).';
    END IF;
    RETURN public.pgp_sym_decrypt(CASE WHEN get_byte(p_pii, 0) = 1 THEN substr(p_pii, 4)
                                       ELSE p_pii END, v_key)::jsonb;
END
$$;
ALTER FUNCTION lake_internal._pii_decrypt(bytea) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_decrypt(bytea) FROM PUBLIC;
