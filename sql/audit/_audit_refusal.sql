-- Record the audit entry of a refusal that raises (a quota refused: lake_internal._quota_charge).
-- lake_internal._audit's entry would vanish with the rollback the refusal causes, so this one,
-- (lake_internal._audit_entry, as jsonb), goes to the audit spool (lake_internal._spool_write) instead; the sealer
-- (lake.seal(), lake_internal._audit_spooled) brings it into the hash-chained log, its
-- occurred_at and transaction as they were. The refusals that do not raise (lake.authenticate)
-- use lake_internal._audit.
CREATE FUNCTION lake_internal._audit_refusal(p_action text, p_object text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM lake_internal._spool_write(
        to_jsonb(lake_internal._audit_entry(p_action, p_object, p_detail, NULL, NULL)));
END
$$;
ALTER FUNCTION lake_internal._audit_refusal(text, text, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_refusal(text, text, jsonb) FROM PUBLIC;
