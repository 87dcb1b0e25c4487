-- Job premake (hourly): every dataset gets its partitions for the month of p_now and its
-- `premake` next months, before records for them arrive. Each dataset on its own: one that
-- fails (e.g. a lock timeout behind a long transaction) is reported and the others go on.
CREATE FUNCTION lake_internal._job_premake(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds       record;
    v_made   jsonb := '{}';
    v_errors jsonb := '{}';
BEGIN
    FOR ds IN SELECT name, premake FROM lake.datasets ORDER BY name LOOP
        BEGIN
            v_made := v_made || jsonb_build_object(ds.name, lake.ensure_partitions(
                ds.name, p_now, p_now + make_interval(months => ds.premake)));
        EXCEPTION WHEN OTHERS THEN
            v_errors := v_errors || jsonb_build_object(ds.name, SQLERRM);
        END;
    END LOOP;
    RETURN jsonb_build_object('partitions_created', v_made, 'errors', v_errors);
END
$$;
ALTER FUNCTION lake_internal._job_premake(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_premake(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_premake(timestamptz) TO lake_admin;
