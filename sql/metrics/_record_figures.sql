-- One sample of the lake's figures into lake.figure_history at p_at: the quality score of each
-- dataset that received records in the last 24 hours, and the bytes of each kind of storage.
-- A second sample at the same instant replaces the first. Returns how many rows it wrote.
CREATE FUNCTION lake_internal._record_figures(p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    INSERT INTO lake.figure_history AS h (at, figure, subject, value)
    SELECT p_at, 'quality_score', q.dataset, q.score
      FROM lake.quality_scores AS q
     WHERE q.check_type = 'all' AND q.time_window = '24h'
    UNION ALL
    SELECT p_at, 'storage_bytes', u.storage_type, sum(u.bytes)
      FROM lake.storage_usage() AS u
     GROUP BY u.storage_type
    ON CONFLICT (figure, subject, at) DO UPDATE SET value = excluded.value;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake_internal._record_figures(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._record_figures(timestamptz) FROM PUBLIC;
