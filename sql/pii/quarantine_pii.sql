-- Quarantined records keep their dataset's pii_fields masked and encrypted.
CREATE TRIGGER pii_protect BEFORE INSERT ON lake.quarantine
    FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_quarantine_pii();
