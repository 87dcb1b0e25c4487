-- Create one partition of user_data.<dataset>: the UTC month starting at p_from, or an overflow
-- partition (p_kind 'before': everything older than p_from; 'after': everything from p_from on).
-- Overflow partitions stand where a DEFAULT partition would, but hold only bounded ranges outside
-- the lake's window and are emptied by the validation trigger in the same statement, so they
-- never block creating a month and never keep a row.
CREATE FUNCTION lake_internal._create_partition(p_dataset text, p_kind text, p_from timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    v_name  text;
    v_bound text;
BEGIN
    CASE p_kind
        WHEN 'month' THEN
            v_name := lake_internal._partition_name(p_dataset, p_from);
            v_bound := format('FROM (%L) TO (%L)', p_from, p_from + interval '1 month');
        WHEN 'before' THEN
            v_name := p_dataset || '_p_before';
            v_bound := format('FROM (MINVALUE) TO (%L)', p_from);
        WHEN 'after' THEN
            v_name := p_dataset || '_p_after';
            v_bound := format('FROM (%L) TO (MAXVALUE)', p_from);
    END CASE;
    EXECUTE format('CREATE TABLE user_data_partitions.%I PARTITION OF user_data.%I FOR VALUES %s',
                   v_name, p_dataset, v_bound);
    -- No policies: nobody but the owner reads a partition directly; access is through the parent.
    EXECUTE format('ALTER TABLE user_data_partitions.%I ENABLE ROW LEVEL SECURITY', v_name);
    IF p_kind = 'month' THEN
        -- The month of the dataset's embeddings, if it declares any.
        PERFORM lake_internal._embedding_partition(p_dataset, p_from);
    END IF;
    RETURN v_name;
END
$$;
ALTER FUNCTION lake_internal._create_partition(text, text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._create_partition(text, text, timestamptz) FROM PUBLIC;
