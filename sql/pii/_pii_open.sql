-- A stored record with its pii_fields in clear again: the masked doc overlaid with the decrypted
-- originals (lake_internal._pii_decrypt, with the key version that sealed them). For the lake's
-- own validation and lake.pii_reveal().
CREATE FUNCTION lake_internal._pii_open(p_doc jsonb, p_pii bytea)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_pii IS NULL THEN p_doc
                ELSE p_doc || lake_internal._pii_decrypt(p_pii) END
$$;
ALTER FUNCTION lake_internal._pii_open(jsonb, bytea) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_open(jsonb, bytea) FROM PUBLIC;
