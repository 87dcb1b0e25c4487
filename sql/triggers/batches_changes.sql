-- Every ingest batch of the COPY inbox and lake.ingest is a change event when it commits.
CREATE CONSTRAINT TRIGGER capture_batch AFTER INSERT ON lake.batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake._tg_capture_batch();
