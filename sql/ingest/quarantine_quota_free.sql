-- Deleted quarantine items (erasure, a dropped dataset) free their bytes of their owners'
-- quarantine quota (lake_internal._tg_quarantine_quota).
CREATE TRIGGER quarantine_quota_free
    AFTER DELETE ON lake.quarantine
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_quarantine_quota();
