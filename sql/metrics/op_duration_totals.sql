-- The durations folded out of lake_internal.op_durations by lake_internal._rollup_op_durations:
-- per operation and status, how many fell at or below each bound of
-- lake_internal._duration_buckets() (cumulative, as Prometheus' buckets), how many in all and
-- their sum. Only the rollup writes it (one job at a time), so its updates contend with nothing.
CREATE TABLE lake_internal.op_duration_totals (
    operation text NOT NULL,
    status    text NOT NULL,
    buckets   bigint[] NOT NULL,
    count     bigint NOT NULL CHECK (count >= 0),
    sum       float8 NOT NULL CHECK (sum >= 0),
    PRIMARY KEY (operation, status)
);
ALTER TABLE lake_internal.op_duration_totals OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.op_duration_totals IS
    'Operation durations folded out of lake_internal.op_durations: cumulative buckets, count, sum.';
COMMENT ON COLUMN lake_internal.op_duration_totals.operation IS 'The operation.';
COMMENT ON COLUMN lake_internal.op_duration_totals.status IS 'ok or error.';
COMMENT ON COLUMN lake_internal.op_duration_totals.buckets IS
    'Per bound of lake_internal._duration_buckets(): how many took at most that long.';
COMMENT ON COLUMN lake_internal.op_duration_totals.count IS 'How many in all.';
COMMENT ON COLUMN lake_internal.op_duration_totals.sum IS 'Their seconds summed.';
