-- The key version (lake_internal.pii_keys) that sealed a pii value: lake_internal._pii_seal
-- prefixes the OpenPGP message with the byte 0x01 and the key's id (2 bytes, big-endian). An
-- OpenPGP message starts with a packet tag (high bit set), so a value without the prefix (sealed
-- before key versions existed, e.g. in an old archive) is told apart: it was sealed with key 1.
CREATE FUNCTION lake_internal._pii_key_of(p_pii bytea)
RETURNS smallint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_pii IS NULL THEN NULL
                WHEN get_byte(p_pii, 0) = 1 THEN (get_byte(p_pii, 1) * 256 + get_byte(p_pii, 2))::smallint
                ELSE 1::smallint END
$$;
ALTER FUNCTION lake_internal._pii_key_of(bytea) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_key_of(bytea) FROM PUBLIC;
