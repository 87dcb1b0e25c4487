-- Drop the month's partition of user_data.<dataset>__embeddings, if there is one: when
-- retention drops the month's records (lake_internal._retire_month). Embeddings are not
-- archived: they are derived from the records, and the service computes them again after a
-- restore.
CREATE FUNCTION lake_internal._drop_embedding_partition(p_dataset text, p_month timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS user_data_partitions.%I',
                   lake_internal._partition_name(p_dataset, p_month) || '_e');
END
$$;
ALTER FUNCTION lake_internal._drop_embedding_partition(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._drop_embedding_partition(text, timestamptz) FROM PUBLIC;
