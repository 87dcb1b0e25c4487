-- Do the work of job p_job (one that runs in a single transaction) for the time p_now: each job
-- is the function lake_internal._job_<name>(timestamptz), which reports what it did as jsonb.
CREATE FUNCTION lake_internal._job_work(p_job text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_details jsonb;
BEGIN
    EXECUTE format('SELECT lake_internal.%I($1)', '_job_' || p_job) INTO v_details USING p_now;
    RETURN v_details;
END
$$;
ALTER FUNCTION lake_internal._job_work(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_work(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_work(text, timestamptz) TO lake_admin;
