-- The lifecycle run over every dataset, as of now (a parameter so that a test can live a year
-- ahead): record tiers and apply their rules (lake_internal._apply_tiers), then archive, verify and
-- drop the months wholly older than the retention window, oldest first
-- (lake_internal._retire_month), then delete archive files older than archive_retention
-- (lake.purge_archives).
--
-- A procedure that COMMITs after every step, so that each dropped month is final at once, no lock
-- outlives its step and a failure loses no finished work: CALL it on its own (not inside a
-- transaction block; pg_cron does so). It has neither SECURITY DEFINER nor a SET clause (either
-- forbids COMMIT), so its body only calls schema-qualified lake functions: the steps are SECURITY
-- DEFINER functions granted to lake_admin, and the report is built by lake_internal._retention_add.
-- A dataset's failure is caught and reported, and the other datasets go on; a dataset stops at its
-- first month that is not dropped (the months stay one contiguous run).
--
-- report (INOUT): {"now": …, "purged": n, "errors": [every failure and every month kept
-- because of a lock, with its dataset], "datasets": {"<name>":
-- {"tiers_changed", "moved", "archived", "dropped", "rows_dropped",
-- "archive_ms", "drop_ms", "months": [one report a month], "kept": [...], "errors": [...]}}}.
CREATE PROCEDURE lake.apply_retention(now timestamptz DEFAULT now(),
                                      INOUT report jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_now ALIAS FOR now;
    p_report ALIAS FOR report;
    v_name text;
    v_step jsonb;
    v_started timestamptz := pg_catalog.clock_timestamp();  -- for lake_internal._record_duration
BEGIN
    p_report := lake_internal._retention_add(NULL, p_now, NULL, NULL);
    FOR v_name IN SELECT d.name FROM lake.datasets AS d ORDER BY d.name LOOP
        BEGIN
            v_step := lake_internal._apply_tiers(v_name, p_now);
        EXCEPTION WHEN OTHERS THEN
            v_step := lake_internal._retention_error('tiers', SQLSTATE, SQLERRM);
        END;
        COMMIT;
        p_report := lake_internal._retention_add(p_report, p_now, v_name, v_step);
        LOOP
            BEGIN
                v_step := lake_internal._retire_month(v_name, p_now);
            EXCEPTION WHEN OTHERS THEN
                v_step := lake_internal._retention_error('retention', SQLSTATE, SQLERRM);
            END;
            COMMIT;
            p_report := lake_internal._retention_add(p_report, p_now, v_name, v_step);
            EXIT WHEN NOT lake_internal._retention_more(v_step);
        END LOOP;
    END LOOP;
    BEGIN
        p_report := lake_internal._retention_add(p_report, p_now, NULL, NULL, lake.purge_archives(p_now));
    EXCEPTION WHEN OTHERS THEN
        p_report := lake_internal._retention_add(p_report, p_now, NULL,
                                        lake_internal._retention_error('purge', SQLSTATE, SQLERRM));
    END;
    -- error when a step failed (its error is in the report) or a month was kept for a lock
    PERFORM lake_internal._record_duration(
        'retention', v_started,
        CASE WHEN p_report OPERATOR(pg_catalog.@>) '{"errors": [{}]}' THEN 'error' ELSE 'ok' END);
    COMMIT;
END
$$;
ALTER PROCEDURE lake.apply_retention(timestamptz, jsonb) OWNER TO lake_owner;
REVOKE ALL ON PROCEDURE lake.apply_retention(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE lake.apply_retention(timestamptz, jsonb) TO lake_admin;

COMMENT ON PROCEDURE lake.apply_retention(timestamptz, jsonb) IS
    'The lifecycle run: tiers, then archive, verify and drop of expired months, then purge of old '
    'archives; returns a report. CALL on its own: commits per step.';
