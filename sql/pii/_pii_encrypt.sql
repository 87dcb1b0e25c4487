-- A JSON object of personal identifiers encrypted with the lake's newest key
-- (lake_internal.pii_keys; pgcrypto, OpenPGP symmetric, AES-256: the key is random, so no key
-- stretching is needed), prefixed with 0x01 and the key's id (2 bytes) so that it can be opened,
-- and re-encrypted, after the key has been rotated (lake_internal._pii_key_of). A transaction
-- that seals holds a shared lock until it ends, so lake_internal._pii_retire never retires a
-- key that an uncommitted row was sealed with.
CREATE FUNCTION lake_internal._pii_encrypt(p_clear jsonb)
RETURNS bytea
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k lake_internal.pii_keys;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('lake.pii_keys'), 0);
    SELECT * INTO k FROM lake_internal.pii_keys AS p
     WHERE p.retired_at IS NULL ORDER BY p.id DESC LIMIT 1;
    RETURN '\x01'::bytea || int2send(k.id)
           || public.pgp_sym_encrypt(p_clear::text, k.key, 'cipher-algo=aes256, s2k-mode=1');
END
$$;
ALTER FUNCTION lake_internal._pii_encrypt(jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_encrypt(jsonb) FROM PUBLIC;
