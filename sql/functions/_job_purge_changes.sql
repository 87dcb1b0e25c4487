-- Job purge_changes (daily): change events are kept 7 days. lake.data_changes comes with change
-- capture (issue 5); until it exists the job reports that it had nothing to purge.
CREATE FUNCTION lake._job_purge_changes(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    IF to_regclass('lake.data_changes') IS NULL THEN
        RETURN jsonb_build_object('skipped', 'lake.data_changes does not exist yet');
    END IF;
    EXECUTE 'DELETE FROM lake.data_changes WHERE created_at < $1 - interval ''7 days'''
      USING p_now;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('changes_deleted', v_n);
END
$$;
ALTER FUNCTION lake._job_purge_changes(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._job_purge_changes(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake._job_purge_changes(timestamptz) TO lake_admin;
