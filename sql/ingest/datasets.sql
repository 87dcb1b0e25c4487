-- The dataset registry: one row per user_data table and the policy that governs it.
CREATE TABLE lake.datasets (
    -- Name of the dataset and of its table user_data.<name>; a plain lower-case identifier.
    name               text PRIMARY KEY
                       CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
    -- Version of the JSON Schema in force (see lake.dataset_schemas).
    schema_version     integer NOT NULL DEFAULT 1,
    -- Key of the record's event time inside doc; copied into the partition key column ts.
    time_field         text NOT NULL DEFAULT 'ts',
    -- How that field is written: RFC 3339 text with an offset, or Unix epoch seconds/milliseconds.
    time_format        text NOT NULL DEFAULT 'rfc3339'
                       CHECK (time_format IN ('rfc3339', 'epoch_s', 'epoch_ms')),
    -- Width of a partition; monthly is the only interval supported today.
    partition_interval interval NOT NULL DEFAULT '1 month' CHECK (partition_interval = '1 month'),
    -- Records older than this are refused, and partitions wholly older are archived and dropped.
    retention          interval NOT NULL DEFAULT '12 months' CHECK (retention > '0'),
    -- Number of future months kept ready as partitions.
    premake            integer NOT NULL DEFAULT 3 CHECK (premake BETWEEN 1 AND 24),
    -- How far ahead of the clock a record's time may be before it is refused.
    max_future         interval NOT NULL DEFAULT '1 day' CHECK (max_future >= '0'),
    -- Limits that protect the lake and its consumers from hostile documents.
    max_record_bytes   integer NOT NULL DEFAULT 16777216 CHECK (max_record_bytes > 0),
    max_depth          integer NOT NULL DEFAULT 64 CHECK (max_depth BETWEEN 1 AND 10000),
    -- Storage tiers by age of the partition (hot, warm, cold).
    tiers              jsonb NOT NULL
                       DEFAULT '{"hot": "30 days", "warm": "90 days", "cold": "365 days"}',
    -- Top-level fields holding personal identifiers (encrypted and masked by the governance
    -- layer): names of properties of the record, never the time field.
    pii_fields         text[] NOT NULL DEFAULT '{}'
                       CHECK (array_position(pii_fields, NULL) IS NULL
                              AND NOT pii_fields && ARRAY['', time_field]),
    -- Whether stored records are scanned for personal identifiers (lake.pii_findings).
    pii_scan           boolean NOT NULL DEFAULT true,
    -- First and last bound of the contiguous run of monthly partitions; rows outside it land in
    -- the two overflow partitions and are quarantined by the validation trigger.
    partitions_from    timestamptz NOT NULL,
    partitions_to      timestamptz NOT NULL,
    -- The format of the files people bring for this dataset (lake.source_formats()): each record
    -- as sent is converted into the dataset's record before validation. NULL: records as they are.
    source_format      text,
    description        text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         name NOT NULL DEFAULT session_user,
    CHECK (partitions_from < partitions_to)
);
ALTER TABLE lake.datasets OWNER TO lake_owner;
GRANT SELECT ON lake.datasets TO lake_admin, lake_read, lake_write;

COMMENT ON TABLE lake.datasets IS
    'Registry of datasets: one row per user_data table and the policy that governs it.';

COMMENT ON COLUMN lake.datasets.name IS
    'The dataset''s name and that of its table user_data.<name>.';
COMMENT ON COLUMN lake.datasets.schema_version IS
    'The version of the JSON Schema in force (lake.dataset_schemas).';
COMMENT ON COLUMN lake.datasets.time_field IS
    'The field of a record that holds its time (copied into ts).';
COMMENT ON COLUMN lake.datasets.time_format IS
    'How the time is written: rfc3339, epoch_s or epoch_ms.';
COMMENT ON COLUMN lake.datasets.partition_interval IS 'The width of a partition: 1 month.';
COMMENT ON COLUMN lake.datasets.retention IS
    'Records older than this are quarantined; older months are archived and dropped.';
COMMENT ON COLUMN lake.datasets.premake IS 'How many future months have partitions ready.';
COMMENT ON COLUMN lake.datasets.max_future IS 'How far ahead of the clock a record''s time may be.';
COMMENT ON COLUMN lake.datasets.max_record_bytes IS 'The largest record accepted, in bytes.';
COMMENT ON COLUMN lake.datasets.max_depth IS 'The deepest nesting accepted in a record.';
COMMENT ON COLUMN lake.datasets.tiers IS
    'Ages at which months turn hot, warm, cold: {"hot": "30 days", ...}.';
COMMENT ON COLUMN lake.datasets.pii_fields IS
    'Top-level fields encrypted into pii and masked in doc.';
COMMENT ON COLUMN lake.datasets.pii_scan IS
    'Whether stored records are scanned for personal identifiers.';
COMMENT ON COLUMN lake.datasets.partitions_from IS 'Start of the run of monthly partitions.';
COMMENT ON COLUMN lake.datasets.partitions_to IS
    'End (exclusive) of the run of monthly partitions.';
COMMENT ON COLUMN lake.datasets.source_format IS
    'The source format (lake.source_formats()) its records are converted from, or NULL.';
COMMENT ON COLUMN lake.datasets.description IS 'Free text describing the dataset.';
COMMENT ON COLUMN lake.datasets.created_at IS 'When the dataset was created.';
COMMENT ON COLUMN lake.datasets.created_by IS 'The database role that created it.';
