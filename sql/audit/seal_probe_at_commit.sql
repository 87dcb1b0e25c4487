-- The probe, named like the lake's commit-time triggers: SET CONSTRAINTS that makes at_commit (or
-- ALL) IMMEDIATE makes this one IMMEDIATE too (PostgreSQL sets every constraint of a name in the
-- schema alike), which lake_internal._require_commit() sees.
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON lake.seal_probe
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_seal_probe();
