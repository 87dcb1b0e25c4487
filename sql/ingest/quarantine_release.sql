-- Review decision: re-validate a quarantined record (or a corrected version of it) and move it
-- into its dataset as a batch of its own, by the rules of every ingest: stored in its month
-- (cold or not), or, older than the first month in the lake, added to its month's archive
-- (the batch counts it archived). Refused with the new reasons if it is still invalid, in which
-- case nothing changes. Returns the release batch.
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
    q        lake.quarantine;
    v_doc    jsonb;
    v_open   record;
    v_batch  lake.batches;
    v_why    jsonb;
BEGIN
    q := lake_internal._undecided_item(p_id);
    v_doc := coalesce(p_corrected, lake_internal._pii_open(q.doc, q.pii));
    IF v_doc IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s holds no parseable record', p_id),
            HINT = 'Pass a corrected record: lake.quarantine_release(id, ''{...}''::jsonb).';
    END IF;
    IF q.user_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s has no owner', p_id),
            HINT = 'Ingest the record again for its owner with lake.ingest(..., for_user => ...) '
                   'and discard this item.';
    END IF;

    v_open := lake_internal._open_batch(q.dataset, gen_random_uuid(), q.user_id, 'release',
                               encode(sha256(convert_to(v_doc::text, 'UTF8')), 'hex'),
                               format('quarantine %s', p_id));
    PERFORM lake_internal._ingest_docs(q.dataset, (v_open.batch).id, q.user_id,
                              ARRAY[format('quarantine %s', p_id)], ARRAY[v_doc]);
    SELECT * INTO v_batch FROM lake.batches WHERE id = (v_open.batch).id;
    IF v_batch.quarantined <> 0 THEN
        SELECT reasons INTO v_why FROM lake.quarantine
         WHERE batch_id = v_batch.id ORDER BY id LIMIT 1;
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('quarantine item %s is still invalid; nothing was changed', p_id),
            DETAIL = left(v_why::text, 2000),
            HINT = 'Pass a corrected record as the second argument, or discard the item.';
    END IF;

    UPDATE lake.quarantine
       SET status = 'released', decided_at = now(), decided_by = session_user,
           decision_note = p_note, released_batch = v_batch.id
     WHERE id = p_id;
    PERFORM lake_internal._audit('quarantine.release', q.dataset,
                        jsonb_build_object('quarantine_id', p_id, 'batch_id', v_batch.id,
                                           'corrected', p_corrected IS NOT NULL, 'note', p_note),
                        q.doc, (lake_internal._pii_seal(
                                   (SELECT d.pii_fields FROM lake.datasets AS d
                                     WHERE d.name = q.dataset), v_doc)).doc);
    RETURN v_batch;
END
$$;
ALTER FUNCTION lake.quarantine_release(bigint, jsonb, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_release(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_release(bigint, jsonb, text) TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_release(bigint, jsonb, text) IS
    'Re-validate a quarantined record (or its correction) and move it into its dataset as a batch '
    'of its own. Administrators.';
