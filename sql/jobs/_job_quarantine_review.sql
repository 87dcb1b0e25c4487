-- Job quarantine_review (hourly): pending items past their review deadline become expired.
-- Nothing is deleted: an expired item still awaits a release or discard decision, and is counted
-- here, in lake.quality_report (expired_review) and in the audit log.
CREATE FUNCTION lake_internal._job_quarantine_review(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r         record;
    v_expired jsonb := '{}';
    v_waiting jsonb;
BEGIN
    FOR r IN
        WITH e AS (
            UPDATE lake.quarantine SET status = 'expired'
             WHERE status = 'pending' AND review_by < p_now
            RETURNING dataset)
        SELECT dataset, count(*) AS n FROM e GROUP BY dataset ORDER BY dataset
    LOOP
        v_expired := v_expired || jsonb_build_object(r.dataset, r.n);
        PERFORM lake_internal._audit('quarantine.expire', r.dataset,
                            jsonb_build_object('items', r.n, 'now', p_now));
    END LOOP;
    SELECT coalesce(jsonb_object_agg(dataset, n), '{}') INTO v_waiting
      FROM (SELECT dataset, count(*) AS n FROM lake.quarantine
             WHERE status = 'expired' GROUP BY dataset) AS w;
    RETURN jsonb_build_object('expired_now', v_expired, 'expired_awaiting_decision', v_waiting);
END
$$;
ALTER FUNCTION lake_internal._job_quarantine_review(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_quarantine_review(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_quarantine_review(timestamptz) TO lake_admin;
