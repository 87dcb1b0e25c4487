-- Job purge_cron_history (daily): pg_cron logs every run in cron.job_run_details and never forgets
-- one; the lake's jobs' entries are kept 30 days. A database without pg_cron has nothing to do.
-- (sql/extensions/pg_cron.sql lets lake_owner see and delete the lake's jobs' entries.)
CREATE FUNCTION lake_internal._job_purge_cron_history(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    IF to_regclass('cron.job_run_details') IS NULL THEN
        RETURN jsonb_build_object('skipped', 'pg_cron is not installed in this database');
    END IF;
    EXECUTE $q$DELETE FROM cron.job_run_details
                WHERE coalesce(end_time, start_time) < $1 - interval '30 days'$q$
      USING p_now;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN jsonb_build_object('runs_deleted', v_n);
END
$$;
ALTER FUNCTION lake_internal._job_purge_cron_history(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_purge_cron_history(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_purge_cron_history(timestamptz) TO lake_admin;
