-- Record the audit entry of a refusal that raises (a quota refused: lake_internal._quota_charge).
-- lake_internal._audit's entry would vanish with the rollback the refusal causes, so this one,
-- with the same fields, goes to the audit spool (lake_internal._spool_write) instead; the sealer
-- (lake.seal(), lake_internal._audit_spooled) brings it into the hash-chained log, its
-- occurred_at and transaction as they were. The refusals that do not raise (lake.authenticate)
-- use lake_internal._audit.
CREATE FUNCTION lake_internal._audit_refusal(p_action text, p_object text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me record;
BEGIN
    SELECT i.user_id, i.service INTO v_me FROM lake_internal._identity() AS i;
    PERFORM lake_internal._spool_write(jsonb_build_object(
        'occurred_at', clock_timestamp(), 'action', p_action, 'object', p_object,
        'db_role', session_user, 'lake_user', v_me.user_id, 'service', v_me.service,
        'client_addr', inet_client_addr(),
        'application', nullif(current_setting('application_name'), ''),
        'xact_id', pg_current_xact_id()::text, 'detail', p_detail));
END
$$;
ALTER FUNCTION lake_internal._audit_refusal(text, text, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_refusal(text, text, jsonb) FROM PUBLIC;
