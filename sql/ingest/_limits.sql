-- The one home of a dataset's limits (lake_internal.limits): every bound that decides whether a
-- record may be stored is computed here and nowhere else. The ingest paths, the reasons and
-- begin_batch take the value this returns, so changing a rule's bound means editing this file.
-- STABLE: now() is the transaction's start, so one batch is judged against one window.
CREATE FUNCTION lake_internal._limits(ds lake.datasets)
RETURNS lake_internal.limits
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ROW(ds.name, ds.time_field, ds.time_format,
               ds.retention, w.retention_from, ds.partitions_from,
               ds.partitions_from, ds.max_future, w.window_to,
               ds.partitions_from, ds.partitions_to,
               w.window_from,
               -- ts <= window_to is ts < window_to + 1 µs (timestamptz counts microseconds)
               least(w.window_to + interval '1 microsecond', ds.partitions_to),
               ds.max_record_bytes, ds.max_depth, 8 * ds.max_depth,
               format('strict $.**{%s}', ds.max_depth + 1)::jsonpath)::lake_internal.limits
      FROM (SELECT now() - ds.retention AS retention_from,
                   ds.partitions_from AS window_from,
                   now() + ds.max_future AS window_to) AS w
$$;
ALTER FUNCTION lake_internal._limits(lake.datasets) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._limits(lake.datasets) FROM PUBLIC;
