-- A dataset's own quotas, where they differ from the lake-wide defaults (the settings
-- quota_stored_bytes, quota_quarantined_bytes, quota_records_per_hour). Each applies to every
-- lake user of the dataset separately; NULL = the lake-wide default. Changed with lake.set_quota.
CREATE TABLE lake.quotas (
    dataset           text PRIMARY KEY REFERENCES lake.datasets (name) ON DELETE CASCADE,
    stored_bytes      bigint CHECK (stored_bytes > 0),
    quarantined_bytes bigint CHECK (quarantined_bytes > 0),
    records_per_hour  bigint CHECK (records_per_hour > 0)
);
ALTER TABLE lake.quotas OWNER TO lake_owner;
GRANT SELECT ON lake.quotas TO lake_admin;

COMMENT ON TABLE lake.quotas IS
    'Per-dataset quotas of each user, where they differ from the lake-wide defaults (lake.settings quota_*); change with lake.set_quota.';
COMMENT ON COLUMN lake.quotas.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.quotas.stored_bytes IS
    'Bytes of records a user may have stored in the dataset (NULL: setting quota_stored_bytes).';
COMMENT ON COLUMN lake.quotas.quarantined_bytes IS
    'Bytes of records a user may have in its quarantine (NULL: setting quota_quarantined_bytes).';
COMMENT ON COLUMN lake.quotas.records_per_hour IS
    'Records a user may send in a clock hour (NULL: setting quota_records_per_hour).';
