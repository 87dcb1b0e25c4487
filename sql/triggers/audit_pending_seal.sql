-- Pending audit entries join the hash chain when their transaction commits.
CREATE CONSTRAINT TRIGGER seal AFTER INSERT ON lake.audit_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake._tg_audit_seal();
