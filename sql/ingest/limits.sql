-- A dataset's limits at this moment, as one value: what a record must satisfy to be stored. Made
-- only by lake_internal._limits, and read by the pass test (lake_internal._passes_sql), the
-- reasons (lake_internal._lake_reasons), partitions on demand and the client's batches, so that
-- they all judge a record by the same bounds. Why a type: one value travels through every
-- ingest path, and the bulk pass test binds it as one parameter.
CREATE TYPE lake_internal.limits AS (
    dataset          text,
    -- How the record's time is read (for the reasons' messages).
    time_field       text,
    time_format      text,
    -- Older than retention_from (now() - retention): outside the retention window.
    retention        interval,
    retention_from   timestamptz,
    -- A valid record before archive_before (the first month in the lake, partitions_from: the
    -- months before were archived and dropped by retention) is not stored but written to the
    -- verified archive of its month (lake_internal._archive_records) and counted as archived.
    -- It is history, not an error. Cold months are in the lake and take records like any other.
    archive_before   timestamptz,
    -- The window a record's time may be stored in: window_from .. window_to, both inclusive,
    -- where window_from = archive_before and window_to = now() + max_future (later is too far in
    -- the future). Partitions are made on demand for times inside it.
    window_from      timestamptz,
    max_future       interval,
    window_to        timestamptz,
    -- The run of monthly partitions: partitions_from <= ts < partitions_to.
    partitions_from  timestamptz,
    partitions_to    timestamptz,
    -- Where a record's time may be stored, the window and the partitions together:
    -- accept_from <= ts < accept_before.
    accept_from      timestamptz,
    accept_before    timestamptz,
    -- Size: at most max_record_bytes (pg_column_size of the jsonb).
    max_record_bytes integer,
    -- Nesting: at most max_depth levels; a document of at most deep_bytes (8 bytes a level)
    -- cannot be deeper, so only larger ones are tested with the jsonpath too_deep.
    max_depth        integer,
    deep_bytes       integer,
    too_deep         jsonpath
);
ALTER TYPE lake_internal.limits OWNER TO lake_owner;
