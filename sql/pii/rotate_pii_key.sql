-- Rotate the PII key now (the pii_keys job does it every pii_key_rotation, 90 days by default):
-- a new key seals from now on; the job re-encrypts older rows in batches and retires the old key
-- once nothing uses it (CALL lake.run_maintenance('pii_keys') runs it at once). lake.pii_reveal
-- works throughout. Returns the new key's id. Administrators only; audited.
CREATE FUNCTION lake.rotate_pii_key()
RETURNS smallint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN lake_internal._pii_rotate('on demand');
END
$$;
ALTER FUNCTION lake.rotate_pii_key() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.rotate_pii_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.rotate_pii_key() TO lake_admin;

COMMENT ON FUNCTION lake.rotate_pii_key() IS
    'Rotate the PII key now; the pii_keys job re-encrypts older rows and retires the old key. '
    'Administrators; audited.';
