-- Put the jobs of lake.job_defs into pg_cron as lake.<name> (an existing one is updated to its
-- definition; a lake.* job no longer defined is removed) and return how many are scheduled. Run
-- by the migrations as the migrating role, which the jobs then run as. pg_cron lives only in the
-- database named by cron.database_name: elsewhere (test databases, a second lake) nothing is
-- scheduled, and lake.jobs shows the jobs as not scheduled.
CREATE FUNCTION lake_internal._install_jobs()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j    lake.job_defs;
    v_n  integer := 0;
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RAISE NOTICE 'lake jobs not scheduled: pg_cron is not installed in database %',
            current_database();
        RETURN 0;
    END IF;
    FOR j IN SELECT * FROM lake.job_defs ORDER BY position LOOP
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING 'lake.' || j.name, j.schedule, j.command;
        v_n := v_n + 1;
    END LOOP;
    EXECUTE $q$SELECT count(cron.unschedule(jobid)) FROM cron.job
                WHERE jobname LIKE 'lake.%' AND username = current_user
                  AND substr(jobname, 6) NOT IN (SELECT name FROM lake.job_defs)$q$;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._install_jobs() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._install_jobs() FROM PUBLIC;
