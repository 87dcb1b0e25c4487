-- Start a client batch (lake_client's COPY path) inside the caller's transaction. Returns only
-- what the client reads: whether the batch is new, the dataset's time field and time format and
-- its size limit (from lake_internal._limits), which the client needs to prepare rows (it never
-- judges a record: the database does), and the batch's counts. A batch id that was committed
-- before returns is_new = false with that batch's counts, and the client sends nothing (a retry
-- after a lost acknowledgement). The client then COPYs into inbox.<dataset>, hands records
-- PostgreSQL could not take as jsonb to lake.ingest_raw, and finishes with lake.end_batch, all
-- in one transaction.
CREATE FUNCTION lake.begin_batch(
    dataset text,
    batch_id uuid,
    checksum text,
    origin text DEFAULT NULL
)
RETURNS TABLE (
    is_new boolean,
    time_field text,
    time_format text,
    max_record_bytes integer,
    received bigint,
    accepted bigint,
    quarantined bigint,
    archived bigint
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
    lim    lake_internal.limits;
BEGIN
    v_open := lake_internal._open_batch(p_dataset, p_batch_id, v_user, 'client', p_checksum, p_origin);
    lim := (SELECT lake_internal._limits(d) FROM lake.datasets AS d WHERE d.name = p_dataset);
    RETURN QUERY SELECT v_open.is_new, lim.time_field, lim.time_format, lim.max_record_bytes,
                        (v_open.batch).received, (v_open.batch).accepted,
                        (v_open.batch).quarantined, (v_open.batch).archived;
END
$$;
ALTER FUNCTION lake.begin_batch(text, uuid, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.begin_batch(text, uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.begin_batch(text, uuid, text, text) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.begin_batch(text, uuid, text, text) IS
    'Open a client batch in the caller''s transaction (lake_client, before its COPY into the '
    'inbox): whether it is new, and what the client needs to route records.';
