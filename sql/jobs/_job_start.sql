-- Record the start of a run of p_job (lake.run_maintenance holds the job's advisory lock, so any
-- other run still marked running lost its session: it is closed as failed, abandoned). Returns
-- the run's id.
CREATE FUNCTION lake_internal._job_start(p_job text, p_now timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    UPDATE lake.job_runs
       SET status = 'failed', finished_at = clock_timestamp(),
           error = 'abandoned: its session ended before the run finished'
     WHERE job = p_job AND status = 'running';
    INSERT INTO lake.job_runs (job, job_now) VALUES (p_job, p_now) RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
ALTER FUNCTION lake_internal._job_start(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_start(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_start(text, timestamptz) TO lake_admin;
