-- Pending audit entries join the hash chain when their transaction commits. Every commit-time
-- trigger of the lake is named at_commit (see lake_internal._require_commit()).
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON lake.audit_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_audit_seal();
