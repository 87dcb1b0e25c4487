-- Record a run of p_job that did not start because another run of it was still going: pg_cron
-- would queue it, the lake skips it.
CREATE FUNCTION lake_internal._job_skip(p_job text, p_now timestamptz)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO lake.job_runs (job, job_now, finished_at, status, details)
    SELECT p_job, p_now, clock_timestamp(), 'skipped',
           jsonb_build_object('running_run', max(r.id), 'running_pid', max(r.pid))
      FROM (SELECT NULL::bigint AS id, NULL::integer AS pid
            UNION ALL
            SELECT id, pid FROM lake.job_runs WHERE job = p_job AND status = 'running') AS r
$$;
ALTER FUNCTION lake_internal._job_skip(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_skip(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_skip(text, timestamptz) TO lake_admin;
