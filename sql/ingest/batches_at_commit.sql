-- Every batch is audited with its final counts when its transaction commits, and a batch of the
-- COPY inbox becomes a change event then. Every commit-time trigger of the lake is named
-- at_commit (see lake_internal._require_commit()).
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON lake.batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_batch_commit();
