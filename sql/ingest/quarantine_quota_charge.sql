-- New quarantine items count against their owners' quarantine quota
-- (lake_internal._tg_quarantine_quota).
CREATE TRIGGER quarantine_quota_charge
    AFTER INSERT ON lake.quarantine
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_quarantine_quota();
