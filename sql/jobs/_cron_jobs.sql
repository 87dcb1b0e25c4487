-- The lake's jobs as pg_cron knows them (schedule, active, last run) for lake.jobs: empty where
-- pg_cron is not installed. Read as lake_owner, whom sql/extensions/pg_cron.sql lets see the
-- lake.* jobs (pg_cron otherwise shows each role only the jobs it scheduled).
CREATE FUNCTION lake_internal._cron_jobs()
RETURNS TABLE (job text, jobid bigint, schedule text, active boolean, last_start timestamptz,
               last_end timestamptz, last_status text, last_message text, failures_24h bigint)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT substr(j.jobname, 6), j.jobid, j.schedule, j.active, r.start_time, r.end_time,
               r.status, r.return_message,
               (SELECT count(*) FROM cron.job_run_details AS f
                 WHERE f.jobid = j.jobid AND f.status = 'failed'
                   AND f.start_time > now() - interval '24 hours')
          FROM cron.job AS j
          LEFT JOIN LATERAL (SELECT d.start_time, d.end_time, d.status, d.return_message
                               FROM cron.job_run_details AS d
                              WHERE d.jobid = j.jobid
                              ORDER BY d.runid DESC LIMIT 1) AS r ON true
         WHERE j.jobname LIKE 'lake.%' AND j.database = current_database()$q$;
END
$$;
ALTER FUNCTION lake_internal._cron_jobs() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._cron_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._cron_jobs() TO lake_admin;
