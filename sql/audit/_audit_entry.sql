-- An audit entry about an action of this session, not yet stored. Who and how come from the
-- session: the login role, the lake user and acting service (lake_internal._identity()), the
-- client address and application name, the transaction, and when it happened. The one home of
-- those fields: lake_internal._audit keeps the entry in lake.audit_pending, and
-- lake_internal._audit_refusal writes it to the spool, where it outlives a rollback.
CREATE FUNCTION lake_internal._audit_entry(
    p_action text,
    p_object text,
    p_detail jsonb,
    p_before jsonb,
    p_after jsonb
)
RETURNS lake.audit_pending
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e lake.audit_pending;
BEGIN
    -- Every column in the table's order; seq is the queue's own (NULL here).
    SELECT NULL, clock_timestamp(), p_action, p_object, session_user, i.user_id, i.service,
           inet_client_addr(), nullif(current_setting('application_name'), ''),
           pg_current_xact_id(), p_detail, p_before, p_after
      INTO STRICT e
      FROM lake_internal._identity() AS i;
    RETURN e;
END
$$;
ALTER FUNCTION lake_internal._audit_entry(text, text, jsonb, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_entry(text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
