-- What each lake user holds and sends, per dataset, for the quotas (lake_internal._quota_charge).
-- A user's usage is the sum of their rows: each session adds to the row of its shard
-- (pg_backend_pid() % 64), so concurrent writers of one user rarely wait on one another's row
-- lock, and reading the usage sums at most 64 rows. hour_records counts the records sent in the
-- clock hour `hour` (a row of an older hour counts nothing). Bytes are pg_column_size of the
-- records as stored (stored_bytes; freed when rows are deleted) and of the quarantine's doc and
-- raw bytes (quarantined_bytes; an item keeps its bytes whatever its status, freed when it is
-- deleted). Rows the lake's owner writes with no lake user in the session are not counted.
CREATE TABLE lake.quota_usage (
    dataset           text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    user_id           text COLLATE "C" NOT NULL,
    shard             smallint NOT NULL,
    hour              timestamptz NOT NULL,
    hour_records      bigint NOT NULL DEFAULT 0,
    stored_bytes      bigint NOT NULL DEFAULT 0,
    quarantined_bytes bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, user_id, shard)
);
ALTER TABLE lake.quota_usage OWNER TO lake_owner;
GRANT SELECT ON lake.quota_usage TO lake_admin;

COMMENT ON TABLE lake.quota_usage IS
    'Each user''s usage of each dataset for the quotas, in up to 64 rows (shards) to be summed.';
COMMENT ON COLUMN lake.quota_usage.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.quota_usage.user_id IS 'The lake user.';
COMMENT ON COLUMN lake.quota_usage.shard IS 'Which of the user''s rows (pg_backend_pid() % 64).';
COMMENT ON COLUMN lake.quota_usage.hour IS 'The clock hour hour_records counts.';
COMMENT ON COLUMN lake.quota_usage.hour_records IS 'Records sent in that hour (this shard).';
COMMENT ON COLUMN lake.quota_usage.stored_bytes IS 'Bytes of stored records (this shard''s share).';
COMMENT ON COLUMN lake.quota_usage.quarantined_bytes IS
    'Bytes of quarantined records (this shard''s share).';
