-- The lake's own figures over time (the figures job, lake_internal._record_figures): per sample
-- time, the quality score of each dataset (lake.quality_scores, check_type all, the last 24
-- hours) and the bytes of each kind of storage (lake.storage_usage(), schemas summed). The
-- status page and Grafana read its history; it holds no user data (no row-level security).
-- A TimescaleDB hypertable of 7-day chunks rather than a table partitioned by month as the
-- datasets are: bench/history.py measured both (and a plain table) on 1 M samples, and the
-- 30-day reads cost the same while the hypertable makes its chunks as samples arrive (no premake)
-- and lets old ones go a week at a time (drop_chunks, the figures job) where a DELETE would
-- take a hundred times longer and leave bloat. Only the Apache build's features: no
-- compression, retention policy or continuous aggregate (README, Time series).
CREATE TABLE lake.figure_history (
    at      timestamptz NOT NULL,
    -- quality_score: 0-1, subject a dataset; storage_bytes: bytes, subject a storage type
    -- (postgres, tier_hot, tier_warm, tier_cold, tier_overflow, archive).
    figure  text NOT NULL CHECK (figure IN ('quality_score', 'storage_bytes')),
    subject text NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (figure, subject, at)
);
SELECT public.create_hypertable('lake.figure_history',
                                public.by_range('at', interval '7 days'),
                                create_default_indexes => false);
ALTER TABLE lake.figure_history OWNER TO lake_owner;
GRANT SELECT ON lake.figure_history TO lake_admin;

COMMENT ON TABLE lake.figure_history IS
    'The lake''s quality scores and storage bytes over time (the figures job): a TimescaleDB '
    'hypertable of 7-day chunks.';
COMMENT ON COLUMN lake.figure_history.at IS 'When the sample was taken.';
COMMENT ON COLUMN lake.figure_history.figure IS 'quality_score or storage_bytes.';
COMMENT ON COLUMN lake.figure_history.subject IS
    'The dataset (quality_score) or the storage type (storage_bytes).';
COMMENT ON COLUMN lake.figure_history.value IS 'The score (0-1) or the bytes.';
