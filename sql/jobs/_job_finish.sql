-- Close a run: failed when the job raised (p_error) or reported errors for some datasets
-- (details -> 'errors' not empty), ok otherwise. A failed run also goes to the server log, where
-- log-based alerting sees it.
CREATE FUNCTION lake_internal._job_finish(p_run bigint, p_details jsonb, p_error text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text := CASE WHEN p_error IS NOT NULL
                            OR coalesce(p_details -> 'errors', '{}') NOT IN ('{}', '[]', 'null')
                          THEN 'failed' ELSE 'ok' END;
    v_job    text;
BEGIN
    UPDATE lake.job_runs
       SET status = v_status, finished_at = clock_timestamp(), details = p_details,
           error = p_error
     WHERE id = p_run
    RETURNING job INTO v_job;
    INSERT INTO lake_internal.job_outcomes AS o (job, status, runs) VALUES (v_job, v_status, 1)
    ON CONFLICT (job, status) DO UPDATE SET runs = o.runs + 1;
    IF v_status = 'failed' THEN
        RAISE WARNING 'lake job % (run %) failed: %', v_job, p_run,
            coalesce(p_error, (p_details -> 'errors')::text);
    END IF;
    RETURN v_status;
END
$$;
ALTER FUNCTION lake_internal._job_finish(bigint, jsonb, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_finish(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_finish(bigint, jsonb, text) TO lake_admin;
