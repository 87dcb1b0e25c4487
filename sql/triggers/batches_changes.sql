-- Every ingest batch of the COPY inbox (source 'client') is a change event when it commits; the
-- other paths' rows are row events (lake._tg_capture), so their batches queue nothing here.
CREATE CONSTRAINT TRIGGER capture_batch AFTER INSERT ON lake.batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.source = 'client') EXECUTE FUNCTION lake._tg_capture_batch();
