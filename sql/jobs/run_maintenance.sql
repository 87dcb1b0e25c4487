-- Run the lake's jobs now: what pg_cron runs on schedule, and what an administrator runs on
-- demand from psql: CALL lake.run_maintenance();  -- every job
--                  CALL lake.run_maintenance('premake');
--                  CALL lake.run_maintenance('retention', now() + interval '1 year');
-- now is the time the jobs work for (default: now), so their behaviour months ahead can be
-- tried and tested without waiting. Each job runs in its own transaction and is recorded in
-- lake.job_runs; a job that fails is recorded as failed and the next one runs; within a job one
-- dataset's failure does not stop the others. A job still running in another session is skipped
-- (and recorded so), not queued. VACUUM and REINDEX CONCURRENTLY cannot run inside a procedure:
-- those jobs are statements that pg_cron runs itself (`lake jobs run vacuum` runs them on demand).
--
-- This procedure commits, so it can be neither SECURITY DEFINER nor have a SET search_path
-- (PostgreSQL forbids COMMIT in those; `make lint` lets pgspot know): every name below is
-- schema-qualified, there are no operators, and the work is done by SECURITY DEFINER functions.
-- Call it outside a transaction block.
CREATE PROCEDURE lake.run_maintenance(job text DEFAULT NULL, now timestamptz DEFAULT NULL)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_job ALIAS FOR job;
    p_now ALIAS FOR now;
    v_now     timestamptz := COALESCE(p_now, pg_catalog.now());  -- syntax, not a function
    v_job     record;
    v_run     bigint;
    v_details jsonb;
    v_error   text;
    v_status  text;
BEGIN
    FOR v_job IN SELECT p.job, p.commits FROM lake_internal._job_plan(p_job) AS p LOOP
        -- Session-level, so it spans the commits below; per database, like the jobs.
        IF NOT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('lake.job'),
                                               pg_catalog.hashtext(v_job.job)) THEN
            PERFORM lake_internal._job_skip(v_job.job, v_now);
            COMMIT;
            CONTINUE;
        END IF;
        v_run := lake_internal._job_start(v_job.job, v_now);
        COMMIT;
        v_details := NULL;
        v_error := NULL;
        IF v_job.commits THEN
            -- Retention commits after each partition, so it cannot run in a subtransaction;
            -- it catches each dataset's errors itself.
            CALL lake.apply_retention(v_now, v_details);
        ELSE
            BEGIN
                v_details := lake_internal._job_work(v_job.job, v_now);
            EXCEPTION WHEN OTHERS THEN
                v_error := SQLERRM;
            END;
        END IF;
        v_status := lake_internal._job_finish(v_run, v_details, v_error);
        COMMIT;
        PERFORM pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('lake.job'),
                                              pg_catalog.hashtext(v_job.job));
        RAISE NOTICE 'lake job %: % (run %)', v_job.job, v_status, v_run;
    END LOOP;
END
$$;
ALTER PROCEDURE lake.run_maintenance(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON PROCEDURE lake.run_maintenance(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE lake.run_maintenance(text, timestamptz) TO lake_admin;

COMMENT ON PROCEDURE lake.run_maintenance(text, timestamptz) IS
    'Run the scheduled jobs now (all, or one), working for the time now. Administrators; outside '
    'a transaction block.';
