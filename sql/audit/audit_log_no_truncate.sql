-- The audit log refuses TRUNCATE (see lake_internal._tg_audit_immutable).
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON lake.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_audit_immutable();
