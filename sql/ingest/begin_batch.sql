-- Start a client batch (lake_client's COPY path) inside the caller's transaction. Returns whether
-- the batch is new, whose records they will be, and the dataset's time field, time format,
-- window, span of partitions and size limit (the client needs the time field, format and limit
-- to prepare rows; the rest describes where records may land). A batch id that was committed
-- before returns is_new = false and the client sends nothing (a retry after a lost
-- acknowledgement). The client then COPYs into inbox.<dataset>, hands records PostgreSQL could
-- not take as jsonb to lake.ingest_raw, and finishes with lake.end_batch, all in one transaction.
CREATE FUNCTION lake.begin_batch(
    dataset text,
    batch_id uuid,
    checksum text,
    origin text DEFAULT NULL
)
RETURNS TABLE (
    is_new boolean,
    id uuid,
    user_id text,
    time_field text,
    time_format text,
    partitions_from timestamptz,
    partitions_to timestamptz,
    window_from timestamptz,
    window_to timestamptz,
    max_record_bytes integer,
    received bigint,
    accepted bigint,
    quarantined bigint
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_batch_id ALIAS FOR batch_id;
    p_checksum ALIAS FOR checksum;
    p_origin ALIAS FOR origin;
    v_user text := lake_internal._batch_user(NULL);
    v_open record;
    ds     lake.datasets;
BEGIN
    v_open := lake_internal._open_batch(p_dataset, p_batch_id, v_user, 'client', p_checksum, p_origin);
    SELECT * INTO ds FROM lake.datasets d WHERE d.name = p_dataset;
    RETURN QUERY SELECT v_open.is_new, (v_open.batch).id, v_user, ds.time_field, ds.time_format,
                        ds.partitions_from, ds.partitions_to,
                        greatest(now() - ds.retention, ds.writable_from),
                        now() + ds.max_future, ds.max_record_bytes,
                        (v_open.batch).received, (v_open.batch).accepted,
                        (v_open.batch).quarantined;
END
$$;
ALTER FUNCTION lake.begin_batch(text, uuid, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.begin_batch(text, uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.begin_batch(text, uuid, text, text) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.begin_batch(text, uuid, text, text) IS
    'Open a client batch in the caller''s transaction (lake_client, before its COPY into the '
    'inbox): whether it is new, and what the client needs to route records.';
