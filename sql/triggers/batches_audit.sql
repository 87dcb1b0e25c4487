-- Every batch is audited with its final counts when its transaction commits.
CREATE CONSTRAINT TRIGGER audit_batch AFTER INSERT ON lake.batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake._tg_audit_batch();
