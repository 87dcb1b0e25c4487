-- Keep an audit entry (lake_internal._audit_entry's, or a spooled one) in lake.audit_pending,
-- where the sealer (lake.seal()) chains it once its transaction has committed. Its seq is the
-- queue's own.
CREATE FUNCTION lake_internal._audit_keep(e lake.audit_pending)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lake.audit_pending
           (occurred_at, action, object, db_role, lake_user, service, client_addr, application,
            xact_id, detail, before, after)
    VALUES (e.occurred_at, e.action, e.object, e.db_role, e.lake_user, e.service, e.client_addr,
            e.application, e.xact_id, e.detail, e.before, e.after);
END
$$;
ALTER FUNCTION lake_internal._audit_keep(lake.audit_pending) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_keep(lake.audit_pending) FROM PUBLIC;
