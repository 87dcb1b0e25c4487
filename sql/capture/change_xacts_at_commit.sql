-- A transaction's captured changes are sealed into lake.data_changes when it commits. Every
-- commit-time trigger of the lake is named at_commit (see lake_internal._require_commit()).
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON lake.change_xacts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_change_seal();
