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
    SELECT i.user_id, i.service INTO e.lake_user, e.service FROM lake_internal._identity() AS i;
    e.occurred_at := clock_timestamp();
    e.action := p_action;
    e.object := p_object;
    e.db_role := session_user;
    e.client_addr := inet_client_addr();
    e.application := nullif(current_setting('application_name'), '');
    e.xact_id := pg_current_xact_id();
    e.detail := p_detail;
    e.before := p_before;
    e.after := p_after;
    RETURN e;
END
$$;
ALTER FUNCTION lake_internal._audit_entry(text, text, jsonb, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_entry(text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
