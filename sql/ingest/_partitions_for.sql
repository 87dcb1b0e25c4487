-- Partitions on demand, for the ingest paths that write new records (lake_internal._tg_inbox and
-- _ingest_docs): make the months of the given times that lie inside the window (lim.window_from
-- .. lim.window_to; no partition is made for a record that would be refused anyway) and return
-- the limits afresh when the run of partitions grew, so the pass test sees the new months.
-- Returns lim itself, without locking anything, when the months exist already.
CREATE FUNCTION lake_internal._partitions_for(lim lake_internal.limits, p_tss timestamptz[])
RETURNS lake_internal.limits
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lo timestamptz;
    v_hi timestamptz;
BEGIN
    SELECT min(t), max(t) INTO v_lo, v_hi
      FROM unnest(p_tss) AS t
     WHERE t >= lim.window_from AND t <= lim.window_to;
    IF v_lo IS NULL THEN
        RETURN lim;
    END IF;
    IF lake.ensure_partitions(lim.dataset, v_lo, v_hi) = 0 THEN
        RETURN lim;
    END IF;
    RETURN (SELECT lake_internal._limits(d) FROM lake.datasets AS d WHERE d.name = lim.dataset);
END
$$;
ALTER FUNCTION lake_internal._partitions_for(lake_internal.limits, timestamptz[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._partitions_for(lake_internal.limits, timestamptz[]) FROM PUBLIC;
