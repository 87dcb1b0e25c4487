-- The quarantine items awaiting a decision (pending or expired) that match every filter given,
-- in id order: the one selection of lake.quarantine_decide and of the export of pending items
-- (lake quarantine export). rule matches an item with any reason of that rule (e.g. maximum,
-- time_missing); received_from and received_before bound when the item was quarantined.
-- Invoker's rights: who may read lake.quarantine (administrators) may read this.
CREATE FUNCTION lake.quarantine_pending(
    dataset text DEFAULT NULL,
    batch_id uuid DEFAULT NULL,
    user_id text DEFAULT NULL,
    rule text DEFAULT NULL,
    received_from timestamptz DEFAULT NULL,
    received_before timestamptz DEFAULT NULL
)
RETURNS SETOF lake.quarantine
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT q.*
      FROM lake.quarantine AS q
     WHERE q.status IN ('pending', 'expired')
       AND (quarantine_pending.dataset IS NULL OR q.dataset = quarantine_pending.dataset)
       AND (quarantine_pending.batch_id IS NULL OR q.batch_id = quarantine_pending.batch_id)
       AND (quarantine_pending.user_id IS NULL OR q.user_id = quarantine_pending.user_id)
       AND (quarantine_pending.rule IS NULL
            OR q.reasons @> jsonb_build_array(jsonb_build_object('rule',
                                                                  quarantine_pending.rule)))
       AND (quarantine_pending.received_from IS NULL
            OR q.received_at >= quarantine_pending.received_from)
       AND (quarantine_pending.received_before IS NULL
            OR q.received_at < quarantine_pending.received_before)
     ORDER BY q.id
$$;
ALTER FUNCTION lake.quarantine_pending(text, uuid, text, text, timestamptz, timestamptz)
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_pending(text, uuid, text, text, timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_pending(text, uuid, text, text, timestamptz, timestamptz)
    TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_pending(text, uuid, text, text, timestamptz, timestamptz) IS
    'The quarantine items awaiting a decision that match every filter given (dataset, batch, '
    'user, rule, received time), in id order. Administrators.';
