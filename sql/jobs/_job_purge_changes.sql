-- Job purge_changes (daily): change events (lake.data_changes) are kept 7 days.
CREATE FUNCTION lake_internal._job_purge_changes(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    DELETE FROM lake.data_changes WHERE created_at < p_now - interval '7 days';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('changes_deleted', v_n);
END
$$;
ALTER FUNCTION lake_internal._job_purge_changes(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_purge_changes(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_purge_changes(timestamptz) TO lake_admin;
