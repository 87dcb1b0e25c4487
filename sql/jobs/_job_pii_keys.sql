-- Job pii_keys (hourly): rotate the PII key when the newest is pii_key_rotation old (90 days by
-- default; lake.rotate_pii_key() rotates on demand), re-encrypt one batch (pii_rekey_batch rows
-- per table) of what older keys sealed, and retire the keys nothing uses any more. Cheap while
-- no older key is left: two look-ups in lake_internal.pii_keys.
CREATE FUNCTION lake_internal._job_pii_keys(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rotated smallint;
    v_rekeyed jsonb;
    v_retire  record;
BEGIN
    IF (SELECT max(k.created_at) FROM lake_internal.pii_keys AS k)
       <= p_now - lake_internal._setting('pii_key_rotation')::interval THEN
        v_rotated := lake_internal._pii_rotate('every ' || lake_internal._setting('pii_key_rotation'));
    END IF;
    v_rekeyed := lake_internal._pii_rekey(lake_internal._setting('pii_rekey_batch')::integer);
    v_retire := lake_internal._pii_retire();
    RETURN jsonb_build_object('rotated_to', v_rotated, 'rekeyed', v_rekeyed,
                              'retired', to_jsonb(v_retire.retired),
                              'held_for_archives', to_jsonb(v_retire.held),
                              'newest_key', (SELECT max(k.id) FROM lake_internal.pii_keys AS k));
END
$$;
ALTER FUNCTION lake_internal._job_pii_keys(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_pii_keys(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_pii_keys(timestamptz) TO lake_admin;
