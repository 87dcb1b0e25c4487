-- Review decision: re-validate a quarantined record (or a corrected version of it) and move it
-- into its dataset as a batch of its own, by the rules of every ingest: stored in its month
-- (cold or not), or, older than the first month in the lake, added to its month's archive
-- (the batch counts it archived). Refused with the new reasons if it is still invalid, in which
-- case nothing changes. Returns the release batch. The release itself is
-- lake_internal._release, shared with lake.quarantine_correct and lake.quarantine_decide.
CREATE FUNCTION lake.quarantine_release(id bigint, corrected jsonb DEFAULT NULL,
                                        note text DEFAULT NULL)
RETURNS lake.batches
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_id ALIAS FOR id;
    p_corrected ALIAS FOR corrected;
    p_note ALIAS FOR note;
    v_out   jsonb;
    v_batch lake.batches;
BEGIN
    v_out := lake_internal._release(ARRAY[p_id], ARRAY[p_corrected], p_note, true) -> 0;
    CASE v_out ->> 'outcome'
    WHEN 'no_record' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s holds no parseable record', p_id),
            HINT = 'Pass a corrected record: lake.quarantine_release(id, ''{...}''::jsonb).';
    WHEN 'no_owner' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s has no owner', p_id),
            HINT = 'Ingest the record again for its owner with lake.ingest(..., for_user => ...) '
                   'and discard this item.';
    WHEN 'invalid' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s is still invalid; nothing was changed', p_id),
            DETAIL = left((v_out -> 'reasons')::text, 2000),
            HINT = 'Pass a corrected record as the second argument, or discard the item.';
    ELSE
        SELECT * INTO v_batch FROM lake.batches AS b WHERE b.id = (v_out ->> 'batch_id')::uuid;
    END CASE;
    RETURN v_batch;
END
$$;
ALTER FUNCTION lake.quarantine_release(bigint, jsonb, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_release(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_release(bigint, jsonb, text) TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_release(bigint, jsonb, text) IS
    'Re-validate a quarantined record (or its correction) and move it into its dataset as a batch '
    'of its own. Administrators.';
