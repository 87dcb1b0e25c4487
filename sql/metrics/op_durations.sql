-- How long the lake's operations took, one row per operation, written by the functions that did
-- the work (lake_internal._record_duration) in their own transaction: an operation whose
-- transaction rolls back leaves no row, so status 'error' is recorded only where a function
-- catches its own failure (a retention step, a job). Append-only, so that concurrent writers
-- (ingest on many sessions) never wait on one another; lake_internal._rollup_op_durations folds
-- old rows into lake_internal.op_duration_totals. `lake serve` reads both
-- (lake.op_duration_histogram) as the histogram data_processing_duration_seconds.
CREATE TABLE lake_internal.op_durations (
    operation   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('ok', 'error')),
    seconds     float8 NOT NULL CHECK (seconds >= 0),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX op_durations_recorded_idx ON lake_internal.op_durations (recorded_at);
ALTER TABLE lake_internal.op_durations OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.op_durations IS
    'Durations of the lake''s operations, recorded by the functions that did the work.';
COMMENT ON COLUMN lake_internal.op_durations.operation IS
    'ingest, validate, retention, archive, restore, rollback, export, erasure, bridge_batch.';
COMMENT ON COLUMN lake_internal.op_durations.status IS 'ok, or error (a failure caught and reported).';
COMMENT ON COLUMN lake_internal.op_durations.seconds IS 'How long it took, in seconds.';
COMMENT ON COLUMN lake_internal.op_durations.recorded_at IS 'When it ended.';
