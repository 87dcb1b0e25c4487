-- Job analyze (0 4 * * *): fresh planner statistics for every dataset (the partitioned table and,
-- through it, its partitions) and the lake's own tables. A table that fails is reported and the
-- others go on. p_now is unused: statistics have no "as of".
CREATE FUNCTION lake_internal._job_analyze(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t        regclass;
    v_done   integer := 0;
    v_errors jsonb := '{}';
BEGIN
    FOR t IN
        SELECT c.oid::regclass
          FROM pg_class AS c
         WHERE c.relnamespace IN ('lake'::regnamespace, 'lake_internal'::regnamespace,
                                 'user_data'::regnamespace)
           AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition
         ORDER BY c.relnamespace, c.relname
    LOOP
        BEGIN
            EXECUTE format('ANALYZE %s', t);
            v_done := v_done + 1;
        EXCEPTION WHEN OTHERS THEN
            v_errors := v_errors || jsonb_build_object(t::text, SQLERRM);
        END;
    END LOOP;
    RETURN jsonb_build_object('tables_analyzed', v_done, 'now', p_now, 'errors', v_errors);
END
$$;
ALTER FUNCTION lake_internal._job_analyze(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_analyze(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_analyze(timestamptz) TO lake_admin;
