-- Job purge_logs (daily): the lake's own job log keeps 30 days. (The server's JSON logs keep 30
-- days by themselves: one file per day of the month, truncated when its day comes round.) The
-- single durations of a day ago are folded into their totals (lake_internal._rollup_op_durations).
CREATE FUNCTION lake_internal._job_purge_logs(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    DELETE FROM lake.job_runs WHERE started_at < p_now - interval '30 days' AND status <> 'running';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('job_runs_deleted', v_n,
                              'durations_folded',
                              lake_internal._rollup_op_durations(p_now - interval '1 day'));
END
$$;
ALTER FUNCTION lake_internal._job_purge_logs(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_purge_logs(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_purge_logs(timestamptz) TO lake_admin;
