-- Record an audit entry. Who and how come from the session: the login role, the lake user and
-- acting service (lake_internal._identity()), the client address and application name, and when it
-- happened. The entry waits in lake.audit_pending and joins the hash chain after the transaction
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
DECLARE
    v_me record;
BEGIN
    SELECT i.user_id, i.service INTO v_me FROM lake_internal._identity() AS i;
    INSERT INTO lake.audit_pending
           (occurred_at, action, object, db_role, lake_user, service, client_addr, application,
            xact_id, detail, before, after)
    VALUES (clock_timestamp(), p_action, p_object, session_user, v_me.user_id, v_me.service,
            inet_client_addr(), nullif(current_setting('application_name'), ''),
            pg_current_xact_id(), p_detail, p_before, p_after);
END
$$;
ALTER FUNCTION lake_internal._audit(text, text, jsonb, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit(text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
