-- Job checkpoints (hourly): the checkpoints past their 24 hours and the before-images no
-- checkpoint needs any more go (lake.purge_checkpoints, as of p_now); then a recovery point of
-- every dataset is taken (lake.checkpoint, label 'hourly'; one taken in the last 30 minutes
-- counts, so late or repeated runs do not push useful ones out of the last 5). One dataset's
-- failure does not stop the others.
CREATE FUNCTION lake_internal._job_checkpoints(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds       record;
    v_made   jsonb := '{}';
    v_errors jsonb := '{}';
    v_purged record;
BEGIN
    SELECT * INTO v_purged FROM lake.purge_checkpoints(p_now);
    FOR ds IN SELECT name FROM lake.datasets ORDER BY name LOOP
        BEGIN
            v_made := v_made || jsonb_build_object(ds.name, (
                SELECT c.id FROM lake.checkpoint(ds.name, 'hourly',
                                                 min_gap => interval '30 minutes') AS c));
        EXCEPTION WHEN OTHERS THEN
            v_errors := v_errors || jsonb_build_object(ds.name, SQLERRM);
        END;
    END LOOP;
    RETURN jsonb_build_object('checkpoints', v_made, 'errors', v_errors,
                              'checkpoints_purged', v_purged.checkpoints_purged,
                              'undo_rows_purged', v_purged.undo_rows_purged);
END
$$;
ALTER FUNCTION lake_internal._job_checkpoints(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_checkpoints(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_checkpoints(timestamptz) TO lake_admin;
