-- Claim a batch id for this transaction. If the id was committed before (a client retrying a
-- batch whose acknowledgement it lost), return that batch instead with is_new = false; the same id
-- for different data is refused. A concurrent attempt with the same id waits for the first.
CREATE FUNCTION lake_internal._open_batch(
    p_dataset text,
    p_batch_id uuid,
    p_user_id text,
    p_source text,
    p_checksum text,
    p_origin text,
    OUT is_new boolean,
    OUT batch lake.batches
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM lake.datasets WHERE name = p_dataset) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100)),
            HINT = 'SELECT name FROM lake.datasets lists the datasets; an administrator creates '
                   'one with lake.create_dataset.';
    END IF;
    INSERT INTO lake.batches (id, dataset, user_id, source, checksum, origin)
    VALUES (p_batch_id, p_dataset, p_user_id, p_source, p_checksum, left(p_origin, 1000))
    ON CONFLICT (id) DO NOTHING
    RETURNING * INTO batch;
    is_new := FOUND;
    IF NOT is_new THEN
        SELECT * INTO batch FROM lake.batches WHERE id = p_batch_id;
        IF batch.dataset <> p_dataset OR batch.checksum IS DISTINCT FROM p_checksum
           OR batch.user_id IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION USING ERRCODE = 'LK030',
                MESSAGE = format('batch id %s was already used for other data', p_batch_id),
                HINT = 'Use a new batch id for new data; reuse an id only to retry the same batch.';
        END IF;
    END IF;
END
$$;
ALTER FUNCTION lake_internal._open_batch(text, uuid, text, text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._open_batch(text, uuid, text, text, text, text) FROM PUBLIC;
