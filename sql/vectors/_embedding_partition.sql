-- The month's partition of user_data.<dataset>__embeddings, when the dataset declares
-- embeddings and it is missing: the embeddings are partitioned as their records, so that every
-- month has its own HNSW index and goes with its month. Called wherever a month of records is
-- made (lake_internal._create_partition, lake.restore_partition, lake.declare_embeddings).
CREATE FUNCTION lake_internal._embedding_partition(p_dataset text, p_month timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    v_name text := lake_internal._partition_name(p_dataset, p_month) || '_e';
BEGIN
    IF to_regclass(format('user_data.%I', p_dataset || '__embeddings')) IS NULL
       OR to_regclass(format('user_data_partitions.%I', v_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE user_data_partitions.%I PARTITION OF user_data.%I'
                   ' FOR VALUES FROM (%L) TO (%L)', v_name, p_dataset || '__embeddings',
                   p_month, p_month + interval '1 month');
    -- As the records' partitions: nobody reads a partition directly.
    EXECUTE format('ALTER TABLE user_data_partitions.%I ENABLE ROW LEVEL SECURITY', v_name);
END
$$;
ALTER FUNCTION lake_internal._embedding_partition(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._embedding_partition(text, timestamptz) FROM PUBLIC;
