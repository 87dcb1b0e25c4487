-- Close a client batch: the server's own count of received records must equal what the client
-- sent, else the whole transaction is refused. Returns the batch row.
CREATE FUNCTION lake.end_batch(batch_id uuid, sent bigint)
RETURNS lake.batches
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_batch_id ALIAS FOR batch_id;
    p_sent ALIAS FOR sent;
    v_batch lake.batches;
BEGIN
    SELECT * INTO v_batch FROM lake.batches WHERE id = p_batch_id;
    IF NOT FOUND OR v_batch.xact_id <> pg_current_xact_id() THEN
        RAISE EXCEPTION USING ERRCODE = 'LK030',
            MESSAGE = format('batch %s is not open in this transaction', p_batch_id);
    END IF;
    IF v_batch.received <> p_sent THEN
        RAISE EXCEPTION USING ERRCODE = 'LK031',
            MESSAGE = format('batch %s: the client sent %s records but the lake received %s',
                             p_batch_id, p_sent, v_batch.received),
            HINT = 'Nothing of this batch was stored; retry it.';
    END IF;
    RETURN v_batch;
END
$$;
ALTER FUNCTION lake.end_batch(uuid, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.end_batch(uuid, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.end_batch(uuid, bigint) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.end_batch(uuid, bigint) IS
    'Close a client batch: the lake''s count must equal sent, else the transaction fails (LK031). '
    'Returns the batch.';
