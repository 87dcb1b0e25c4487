-- Deferred constraint trigger of lake.batches: when a transaction that opened batches commits,
-- one audit entry per batch with its final counts (entered when the counts are final).
CREATE FUNCTION lake._tg_audit_batch()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b lake.batches;
BEGIN
    SELECT * INTO b FROM lake.batches WHERE id = NEW.id;
    IF FOUND THEN
        PERFORM lake._audit('ingest.batch', b.dataset,
                            jsonb_build_object('batch_id', b.id, 'user_id', b.user_id,
                                               'source', b.source, 'origin', b.origin,
                                               'received', b.received, 'accepted', b.accepted,
                                               'quarantined', b.quarantined,
                                               'checksum', b.checksum));
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake._tg_audit_batch() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._tg_audit_batch() FROM PUBLIC;
