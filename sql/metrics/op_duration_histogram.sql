-- The durations of the lake's operations as Prometheus histograms: per operation and status, the
-- upper bounds (seconds), how many took at most each (cumulative), how many in all and their sum:
-- the folded totals plus the single durations not folded yet. `lake serve` exposes it as
-- data_processing_duration_seconds.
CREATE VIEW lake.op_duration_histogram AS
SELECT k.operation, k.status, lake_internal._duration_buckets() AS bounds,
       ARRAY(SELECT coalesce(t.buckets[b.i], 0)
                    + (SELECT count(*) FROM lake_internal.op_durations AS d
                        WHERE d.operation = k.operation AND d.status = k.status
                          AND d.seconds <= b.le)
               FROM unnest(lake_internal._duration_buckets()) WITH ORDINALITY AS b(le, i)
              ORDER BY b.i) AS buckets,
       coalesce(t.count, 0) + coalesce(r.n, 0) AS count,
       coalesce(t.sum, 0) + coalesce(r.s, 0) AS sum
  FROM (SELECT operation, status FROM lake_internal.op_duration_totals
        UNION
        SELECT DISTINCT operation, status FROM lake_internal.op_durations) AS k
  LEFT JOIN lake_internal.op_duration_totals AS t USING (operation, status)
  LEFT JOIN (SELECT operation, status, count(*) AS n, sum(seconds) AS s
               FROM lake_internal.op_durations GROUP BY 1, 2) AS r USING (operation, status);
ALTER VIEW lake.op_duration_histogram OWNER TO lake_owner;
GRANT SELECT ON lake.op_duration_histogram TO lake_admin;

COMMENT ON VIEW lake.op_duration_histogram IS
    'Durations of the lake''s operations as histograms (data_processing_duration_seconds).';
COMMENT ON COLUMN lake.op_duration_histogram.operation IS 'The operation.';
COMMENT ON COLUMN lake.op_duration_histogram.status IS 'ok or error.';
COMMENT ON COLUMN lake.op_duration_histogram.bounds IS 'Upper bounds of the buckets, seconds.';
COMMENT ON COLUMN lake.op_duration_histogram.buckets IS
    'How many took at most each bound (cumulative).';
COMMENT ON COLUMN lake.op_duration_histogram.count IS 'How many in all.';
COMMENT ON COLUMN lake.op_duration_histogram.sum IS 'Their seconds summed.';
