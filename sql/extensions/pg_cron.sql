-- pg_cron runs the lake's scheduled jobs. It can only live in the database named by
-- cron.database_name; other databases (tests, a second lake) get no schedule (lake.jobs shows
-- their jobs as not scheduled; lake.run_maintenance works everywhere).
--
-- pg_cron shows each role only the jobs it scheduled. The lake's jobs are scheduled by the
-- migrating role; lake_owner (through lake.jobs and the purge_cron_history job) may see them and
-- their runs, and delete their old runs, and nothing else of pg_cron's.
DO $$
BEGIN
    IF current_setting('cron.database_name', true) = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
        GRANT USAGE ON SCHEMA cron TO lake_owner;
        GRANT SELECT ON cron.job TO lake_owner;
        GRANT SELECT, DELETE ON cron.job_run_details TO lake_owner;
        DROP POLICY IF EXISTS lake_jobs ON cron.job;
        CREATE POLICY lake_jobs ON cron.job FOR SELECT TO lake_owner
            USING (jobname LIKE 'lake.%');
        DROP POLICY IF EXISTS lake_job_runs ON cron.job_run_details;
        CREATE POLICY lake_job_runs ON cron.job_run_details FOR ALL TO lake_owner
            USING (jobid IN (SELECT j.jobid FROM cron.job AS j WHERE j.jobname LIKE 'lake.%'));
    ELSE
        RAISE NOTICE 'pg_cron is not created in database %: cron.database_name is %',
            current_database(), coalesce(current_setting('cron.database_name', true), '(unset)');
    END IF;
END
$$;
