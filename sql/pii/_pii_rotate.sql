-- Make a new PII key version, the newest, so that everything sealed from now on uses it; older
-- keys keep opening what they sealed until the pii_keys job has re-encrypted it
-- (lake_internal._pii_rekey) and retired them (lake_internal._pii_retire). Audited (the key's id,
-- never the key). Returns the new key's id.
CREATE FUNCTION lake_internal._pii_rotate(p_why text)
RETURNS smallint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id smallint;
BEGIN
    -- One rotation at a time: two would both pick the same id.
    LOCK TABLE lake_internal.pii_keys IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO lake_internal.pii_keys (id, key)
    SELECT coalesce(max(k.id), 0) + 1, encode(public.gen_random_bytes(32), 'base64')
      FROM lake_internal.pii_keys AS k
    RETURNING id INTO v_id;
    PERFORM lake_internal._audit('pii.key_rotate', v_id::text, jsonb_build_object('why', p_why));
    RETURN v_id;
END
$$;
ALTER FUNCTION lake_internal._pii_rotate(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_rotate(text) FROM PUBLIC;
