-- Record an audit entry. Who and how come from the session (lake_internal._audit_entry). The entry waits in lake.audit_pending and joins the hash chain after the transaction
-- commits (the sealer, lake.seal()); it vanishes with a rollback. Locks nothing shared.
CREATE FUNCTION lake_internal._audit(
    p_action text,
    p_object text,
    p_detail jsonb DEFAULT NULL,
    p_before jsonb DEFAULT NULL,
    p_after jsonb DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM lake_internal._audit_keep(
        lake_internal._audit_entry(p_action, p_object, p_detail, p_before, p_after));
END
$$;
ALTER FUNCTION lake_internal._audit(text, text, jsonb, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit(text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
