-- Job verify_audit (every 10 minutes): check the whole audit chain (lake.verify_audit_chain)
-- and keep the verdict in lake.job_runs, where lake serve's lake_audit_chain_ok reads it. A
-- scrape must not verify a chain that grows for a year; a broken chain fails the run, so the
-- job-failure alert and audit_chain_broken both see it.
CREATE FUNCTION lake_internal._job_verify_audit(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
BEGIN
    SELECT c.ok, c.entries, c.first_bad_id, c.problem INTO STRICT v
      FROM lake.verify_audit_chain() AS c;
    RETURN jsonb_build_object('ok', v.ok, 'entries', v.entries)
        || CASE WHEN v.ok THEN '{}'::jsonb
                ELSE jsonb_build_object('first_bad_id', v.first_bad_id,
                                        'errors', jsonb_build_object('audit_log', v.problem)) END;
END
$$;
ALTER FUNCTION lake_internal._job_verify_audit(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_verify_audit(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_verify_audit(timestamptz) TO lake_admin;
