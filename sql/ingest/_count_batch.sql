-- Add a statement's rows to its batch (received = accepted + archived + quarantined), creating the batch for plain INSERT/COPY by applications.
-- The batch's owner is charged the records and the bytes stored (p_stored_bytes) against their
-- quotas (lake_internal._quota_charge), which may refuse the statement (LK032).
-- A batch only grows inside the transaction that opened it: a committed batch is final, which
-- is what makes a retried client batch recognisable. It records the schema version in force,
-- the one the statement's rows were judged by (lake.evolve_schema waits for writers in flight).
CREATE FUNCTION lake_internal._count_batch(
    p_dataset text,
    p_batch_id uuid,
    p_received bigint,
    p_quarantined bigint,
    p_source text,
    p_archived bigint DEFAULT 0,
    p_stored_bytes bigint DEFAULT 0
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id   uuid;
    v_user text;
BEGIN
    INSERT INTO lake.batches AS b
           (id, dataset, user_id, source, received, accepted, archived, quarantined,
            schema_version)
    VALUES (p_batch_id, p_dataset, (SELECT i.user_id FROM lake_internal._identity() AS i), p_source,
            p_received, p_received - p_archived - p_quarantined, p_archived, p_quarantined,
            (SELECT d.schema_version FROM lake.datasets AS d WHERE d.name = p_dataset))
    ON CONFLICT (id) DO UPDATE
       SET received = b.received + excluded.received,
           accepted = b.accepted + excluded.accepted,
           archived = b.archived + excluded.archived,
           quarantined = b.quarantined + excluded.quarantined,
           schema_version = excluded.schema_version
     WHERE b.xact_id = pg_current_xact_id() AND b.dataset = excluded.dataset
    RETURNING b.id, b.user_id INTO v_id, v_user;
    IF v_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK030',
            MESSAGE = format('batch %s is closed or belongs to another dataset', p_batch_id),
            HINT = 'A committed batch cannot grow: leave batch_id to its default or use a new id.';
    END IF;
    -- The batch's owner (for a release or an administrator's for_user ingest, not the session's
    -- user) against their quotas: a refusal rolls the statement back, these counts with it.
    PERFORM lake_internal._quota_charge(p_dataset, v_user, p_received, p_stored_bytes, 0);
END
$$;
ALTER FUNCTION lake_internal._count_batch(text, uuid, bigint, bigint, text, bigint, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._count_batch(text, uuid, bigint, bigint, text, bigint, bigint) FROM PUBLIC;
