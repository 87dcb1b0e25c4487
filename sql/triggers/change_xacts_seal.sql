-- A transaction's captured changes are sealed into lake.data_changes when it commits.
CREATE CONSTRAINT TRIGGER seal AFTER INSERT ON lake.change_xacts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake._tg_change_seal();
