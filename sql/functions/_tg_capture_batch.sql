-- Deferred constraint trigger of lake.batches: when a transaction that ingested through the COPY
-- inbox (lake_client) commits, one change event per batch with its final counts, sealed at once:
-- that path writes partitions directly, set-based, so there are no row events for it. Whatever
-- goes through user_data.<dataset> (plain INSERT, lake.ingest, releases from the quarantine,
-- rollbacks) is recorded row by row by lake._tg_capture instead.
CREATE FUNCTION lake._tg_capture_batch()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b lake.batches;
BEGIN
    SELECT * INTO b FROM lake.batches WHERE id = NEW.id;
    -- Only batches of the COPY inbox reach here (the trigger's WHEN: source = 'client').
    IF NOT FOUND OR b.accepted = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO lake.change_pending (dataset, user_id, op, after, source)
    VALUES (b.dataset, b.user_id, 'c',
            jsonb_build_object('batch_id', b.id, 'user_id', b.user_id, 'source', b.source,
                               'received', b.received, 'accepted', b.accepted,
                               'quarantined', b.quarantined),
            lake._change_source('user_data', b.dataset,
                                (extract(epoch FROM b.created_at) * 1000)::bigint, 'batch')
                || jsonb_build_object('batch_id', b.id));
    PERFORM lake._seal_changes();  -- the transaction's seal may have run already
    RETURN NULL;
END
$$;
ALTER FUNCTION lake._tg_capture_batch() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._tg_capture_batch() FROM PUBLIC;
