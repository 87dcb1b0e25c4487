-- The audit log refuses UPDATE and DELETE of any entry (see lake_internal._tg_audit_immutable).
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON lake.audit_log
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_audit_immutable();
