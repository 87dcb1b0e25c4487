-- Fold the durations recorded before p_before into lake_internal.op_duration_totals and delete
-- them, so that the table of single durations stays small and the histogram's counts never go
-- down (they are counters). Called by the purge_logs job; returns how many rows it folded.
CREATE FUNCTION lake_internal._rollup_op_durations(p_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n bigint;
BEGIN
    WITH moved AS (
        DELETE FROM lake_internal.op_durations WHERE recorded_at < p_before
        RETURNING operation, status, seconds
    ), folded AS (
        SELECT m.operation, m.status,
               ARRAY(SELECT count(*) FILTER (WHERE m2.seconds <= b.le)
                       FROM unnest(lake_internal._duration_buckets()) WITH ORDINALITY AS b(le, i)
                       LEFT JOIN moved AS m2 ON m2.operation = m.operation
                                            AND m2.status = m.status
                      GROUP BY b.i ORDER BY b.i) AS buckets,
               count(*) AS n, sum(m.seconds) AS s
          FROM moved AS m
         GROUP BY m.operation, m.status
    ), upserted AS (  -- runs although unreferenced: PostgreSQL always runs data-modifying CTEs
        INSERT INTO lake_internal.op_duration_totals AS t (operation, status, buckets, count, sum)
        SELECT operation, status, buckets, n, s FROM folded
        ON CONFLICT (operation, status) DO UPDATE
           SET buckets = ARRAY(SELECT x + y
                                 FROM unnest(t.buckets, excluded.buckets) AS u(x, y)),
               count = t.count + excluded.count,
               sum = t.sum + excluded.sum
    )
    SELECT coalesce(sum(n), 0) INTO v_n FROM folded;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._rollup_op_durations(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._rollup_op_durations(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._rollup_op_durations(timestamptz) TO lake_admin;
