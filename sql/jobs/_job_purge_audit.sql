-- Job purge_audit (daily): the audit log keeps 365 days (lake.purge_audit_log).
CREATE FUNCTION lake_internal._job_purge_audit(p_now timestamptz)
RETURNS jsonb
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('months_dropped', lake.purge_audit_log(p_now))
$$;
ALTER FUNCTION lake_internal._job_purge_audit(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_purge_audit(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_purge_audit(timestamptz) TO lake_admin;
