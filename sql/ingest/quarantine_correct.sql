-- A correction of a quarantined record, e.g. a line of a file of pending items that a person
-- fixed (lake quarantine export / import): the corrected record is judged and, when valid,
-- released by the one release (lake_internal._release): stored or archived as a batch of its
-- own, the item marked corrected with that batch. One that is still invalid leaves the item
-- pending as it was and says why (outcome invalid, reasons). Idempotent: the same correction of
-- an item it corrected already returns already_corrected and changes nothing, so a file can be
-- imported again. A pii_field left as its mask keeps the value sent. Returns
-- {"id", "outcome": stored | archived | invalid | no_owner | already_corrected, "reasons",
-- "batch_id"}.
CREATE FUNCTION lake.quarantine_correct(id bigint, corrected jsonb, note text DEFAULT NULL)
RETURNS jsonb
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
    q lake.quarantine;
BEGIN
    IF p_corrected IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = format('a correction of quarantine item %s needs the corrected record', p_id),
            HINT = 'lake.quarantine_correct(id, ''{...}''::jsonb)';
    END IF;
    SELECT * INTO q FROM lake.quarantine AS x WHERE x.id = p_id;
    -- The batch of a correction holds that one record: its checksum is the correction's.
    IF q.status = 'corrected' AND EXISTS (
           SELECT FROM lake.batches AS b
            WHERE b.id = q.released_batch
              AND b.checksum = encode(sha256(convert_to(p_corrected::text, 'UTF8')), 'hex')) THEN
        RETURN jsonb_build_object('id', p_id, 'outcome', 'already_corrected',
                                  'reasons', '[]'::jsonb, 'batch_id', q.released_batch);
    END IF;
    RETURN lake_internal._release(ARRAY[p_id], ARRAY[p_corrected], p_note, true) -> 0;
END
$$;
ALTER FUNCTION lake.quarantine_correct(bigint, jsonb, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_correct(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_correct(bigint, jsonb, text) TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_correct(bigint, jsonb, text) IS
    'Release a quarantined item as its corrected record, or say why the correction is still '
    'invalid (the item stays pending); the same correction again changes nothing. Administrators.';
