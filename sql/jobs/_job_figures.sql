-- Job figures (*/15 * * * *): a sample of the lake's quality scores and storage bytes into
-- lake.figure_history (lake_internal._record_figures), and the chunks older than the
-- figure_history_retention setting dropped (TimescaleDB's drop_chunks: a week at a time; the
-- Apache build has no retention policy to do it).
CREATE FUNCTION lake_internal._job_figures(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows    integer;
    v_dropped integer;
BEGIN
    v_rows := lake_internal._record_figures(p_now);
    SELECT count(*) INTO v_dropped
      FROM public.drop_chunks('lake.figure_history',
                              older_than => p_now - lake_internal._setting('figure_history_retention')::interval);
    RETURN jsonb_build_object('samples', v_rows, 'chunks_dropped', v_dropped);
END
$$;
ALTER FUNCTION lake_internal._job_figures(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_figures(timestamptz) FROM PUBLIC;
