-- The one home of the quotas: add a statement's records and bytes to a user's usage of a dataset
-- (lake.quota_usage) and refuse the statement when that takes the user past a quota in force
-- (lake.quotas, else the lake-wide settings quota_*). Called once a statement by every ingest
-- path: lake_internal._count_batch (records sent, bytes stored: the inbox, COPY and INSERT into
-- user_data, lake.ingest, lake.ingest_raw, quarantine releases; charged to the batch's owner)
-- and the quarantine's trigger lake_internal._tg_quarantine_quota (bytes quarantined, to the
-- items' owners). The refusal raises LK032, so the whole statement, and with it the batch,
-- writes nothing; its audit entry (quota.refused) goes through the audit spool to survive that
-- rollback. Negative amounts (rows deleted) are never refused. A NULL user (the lake's owner
-- writing with no lake user) is not counted. Concurrent statements of one user are checked
-- against what committed before them and their own: together they may pass a quota by up to
-- one statement each.
CREATE FUNCTION lake_internal._quota_charge(
    p_dataset text,
    p_user_id text,
    p_records bigint,
    p_stored_bytes bigint,
    p_quarantined_bytes bigint
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hour  timestamptz := date_trunc('hour', statement_timestamp(), 'UTC');
    v_use   record;
    v_lim   record;
    v_kind  text;
    v_used  bigint;
    v_add   bigint;
    v_limit bigint;
BEGIN
    IF p_user_id IS NULL
       OR (p_records = 0 AND p_stored_bytes = 0 AND p_quarantined_bytes = 0) THEN
        RETURN;
    END IF;
    INSERT INTO lake.quota_usage AS u
           (dataset, user_id, shard, hour, hour_records, stored_bytes, quarantined_bytes)
    VALUES (p_dataset, p_user_id, pg_backend_pid() % 64, v_hour, p_records, p_stored_bytes,
            p_quarantined_bytes)
    ON CONFLICT (dataset, user_id, shard) DO UPDATE
       SET hour = greatest(u.hour, excluded.hour),
           -- a row of an older hour starts the new one; a statement of an hour already past
           -- (a long transaction) counts for that hour only, which no one reads any more
           hour_records = CASE WHEN u.hour = excluded.hour THEN u.hour_records + excluded.hour_records
                               WHEN u.hour > excluded.hour THEN u.hour_records
                               ELSE excluded.hour_records END,
           stored_bytes = u.stored_bytes + excluded.stored_bytes,
           quarantined_bytes = u.quarantined_bytes + excluded.quarantined_bytes;
    IF p_records <= 0 AND p_stored_bytes <= 0 AND p_quarantined_bytes <= 0 THEN
        RETURN;
    END IF;
    SELECT sum(u.stored_bytes) AS stored_bytes, sum(u.quarantined_bytes) AS quarantined_bytes,
           coalesce(sum(u.hour_records) FILTER (WHERE u.hour = v_hour), 0) AS records
      INTO v_use
      FROM lake.quota_usage AS u
     WHERE u.dataset = p_dataset AND u.user_id = p_user_id;
    SELECT coalesce(q.stored_bytes, pg_size_bytes(lake_internal._setting('quota_stored_bytes')))
               AS stored_bytes,
           coalesce(q.quarantined_bytes,
                    pg_size_bytes(lake_internal._setting('quota_quarantined_bytes')))
               AS quarantined_bytes,
           coalesce(q.records_per_hour, lake_internal._setting('quota_records_per_hour')::bigint)
               AS records
      INTO v_lim
      FROM (SELECT) AS one LEFT JOIN lake.quotas AS q ON q.dataset = p_dataset;
    IF p_records > 0 AND v_use.records > v_lim.records THEN
        v_kind := 'records_per_hour';
        v_used := v_use.records; v_add := p_records; v_limit := v_lim.records;
    ELSIF p_stored_bytes > 0 AND v_use.stored_bytes > v_lim.stored_bytes THEN
        v_kind := 'stored_bytes';
        v_used := v_use.stored_bytes; v_add := p_stored_bytes; v_limit := v_lim.stored_bytes;
    ELSIF p_quarantined_bytes > 0 AND v_use.quarantined_bytes > v_lim.quarantined_bytes THEN
        v_kind := 'quarantined_bytes';
        v_used := v_use.quarantined_bytes; v_add := p_quarantined_bytes;
        v_limit := v_lim.quarantined_bytes;
    ELSE
        RETURN;
    END IF;
    PERFORM lake_internal._audit_refusal('quota.refused', p_dataset, jsonb_build_object(
        'user_id', p_user_id, 'quota', v_kind, 'used', v_used - v_add, 'adding', v_add,
        'limit', v_limit));
    RAISE EXCEPTION USING ERRCODE = 'LK032',
        MESSAGE = format('quota %s of dataset %s exceeded for user %s: %s in use, this statement '
                         'adds %s, the quota is %s (nothing of it was written)',
                         v_kind, p_dataset, p_user_id, v_used - v_add, v_add, v_limit),
        HINT = CASE v_kind
            WHEN 'records_per_hour' THEN 'Send the rest in the next hour, or '
            WHEN 'stored_bytes' THEN 'Delete records you no longer need, or '
            ELSE 'Fix what you send (the quarantine holds what was refused) or have items '
                 'deleted, or ' END
            || format('ask an administrator to raise it: SELECT lake.set_quota(%L, %s => ...).',
                      p_dataset, v_kind);
END
$$;
ALTER FUNCTION lake_internal._quota_charge(text, text, bigint, bigint, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._quota_charge(text, text, bigint, bigint, bigint) FROM PUBLIC;
