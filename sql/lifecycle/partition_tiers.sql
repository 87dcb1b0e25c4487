-- The storage tier of each monthly partition as the tiering step (lake.apply_retention) last
-- recorded it: hot, warm, cold or expired, by the age of the partition's upper bound against
-- its dataset's tiers. Cold and expired partitions take no new or changed rows.
CREATE TABLE lake.partition_tiers (
    dataset     text NOT NULL REFERENCES lake.datasets (name),
    -- First instant of the partition's UTC month.
    month       timestamptz NOT NULL,
    partition   text NOT NULL,
    tier        text NOT NULL CHECK (tier IN ('hot', 'warm', 'cold', 'expired')),
    -- The tablespace the partition was moved to, or NULL where it was left.
    tablespace  name,
    -- The "now" of the run that recorded this tier (apply_retention's p_now) and the real time.
    as_of       timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, month)
);
ALTER TABLE lake.partition_tiers OWNER TO lake_owner;
GRANT SELECT ON lake.partition_tiers TO lake_admin;

COMMENT ON TABLE lake.partition_tiers IS
    'Tier of each monthly partition as recorded by the tiering step of lake.apply_retention.';

COMMENT ON COLUMN lake.partition_tiers.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.partition_tiers.month IS 'First instant of the partition''s UTC month.';
COMMENT ON COLUMN lake.partition_tiers.partition IS 'The partition.';
COMMENT ON COLUMN lake.partition_tiers.tier IS 'hot, warm, cold or expired.';
COMMENT ON COLUMN lake.partition_tiers.tablespace IS
    'The tablespace it was moved to (NULL: left where it was).';
COMMENT ON COLUMN lake.partition_tiers.as_of IS 'The now of the run that recorded the tier.';
COMMENT ON COLUMN lake.partition_tiers.changed_at IS 'When the tier was recorded.';
