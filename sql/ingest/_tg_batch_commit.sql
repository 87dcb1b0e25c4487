-- Deferred constraint trigger of lake.batches: when a transaction that opened batches commits,
-- one audit entry per batch with its final counts; and a batch of the COPY inbox (source
-- 'client', lake_client) that stored rows becomes one pending change event: that path
-- writes partitions directly, set-based, so it has no row events. Whatever goes through
-- user_data.<dataset> (plain INSERT, lake.ingest, releases from the quarantine, rollbacks) is
-- recorded row by row by lake_internal._tg_capture instead.
CREATE FUNCTION lake_internal._tg_batch_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b lake.batches;
BEGIN
    PERFORM lake_internal._require_commit();  -- not early: the counts are final only at commit
    SELECT * INTO b FROM lake.batches WHERE id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM lake_internal._audit('ingest.batch', b.dataset,
                        jsonb_build_object('batch_id', b.id, 'user_id', b.user_id,
                                           'source', b.source, 'origin', b.origin,
                                           'received', b.received, 'accepted', b.accepted,
                                           'archived', b.archived,
                                           'quarantined', b.quarantined,
                                           'checksum', b.checksum));
    -- from the batch's transaction's start to its commit; a release re-validates records
    PERFORM lake_internal._record_duration(
        CASE WHEN b.source = 'release' THEN 'validate' ELSE 'ingest' END, b.created_at);
    IF b.source = 'client' AND b.accepted > 0 THEN
        INSERT INTO lake_internal.change_pending (dataset, user_id, op, after, source)
        VALUES (b.dataset, b.user_id, 'c',
                jsonb_build_object('batch_id', b.id, 'user_id', b.user_id, 'source', b.source,
                                   'received', b.received, 'accepted', b.accepted,
                                   'quarantined', b.quarantined),
                lake_internal._change_source('user_data', b.dataset,
                                    (extract(epoch FROM b.created_at) * 1000)::bigint, 'batch')
                    || jsonb_build_object('batch_id', b.id));
        PERFORM lake_internal._wake_sealer();
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_batch_commit() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_batch_commit() FROM PUBLIC;
