-- Chain the committed audit entries waiting in lake.audit_pending: called only by lake.seal(),
-- which runs one sealer at a time. Takes every entry this statement's snapshot sees (committed
-- before the sealer looked; running transactions' entries are invisible and wait for the next
-- seal), in seq order, appends each to the hash chain after lake_internal.audit_head, and deletes
-- them. Writers only insert pending entries, so no writer waits on another at commit. `at` (when the
-- entry joined the chain) never goes back, even if the clock does, so months hold runs of ids.
-- Makes the month's partition when it is missing. Returns how many entries it chained.
CREATE FUNCTION lake_internal._seal_audit()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    h      lake_internal.audit_head;
    p      lake.audit_pending;
    e      lake.audit_log;
    v_at   timestamptz;
    v_part text;
    v_from timestamptz;
    v_seqs bigint[] := '{}';
    v_id   bigint;
    v_prev bytea;
    v_hash bytea;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.audit_pending) THEN
        RETURN 0;  -- an idle poll writes nothing (no transaction id, no WAL)
    END IF;
    -- Only the sealer and lake.purge_audit_log write the head; this waits for a running purge.
    SELECT * INTO STRICT h FROM lake_internal.audit_head FOR UPDATE;
    v_id := h.last_id;
    v_prev := h.last_hash;
    v_at := greatest(clock_timestamp(), h.last_at);
    v_from := date_trunc('month', v_at);
    v_part := 'audit_log_p' || to_char(v_from, 'YYYY_MM');
    -- The loop's query has one snapshot: the batch is what it sees.
    FOR p IN SELECT * FROM lake.audit_pending ORDER BY seq LOOP
        IF cardinality(v_seqs) = 0 AND to_regclass(format('lake.%I', v_part)) IS NULL THEN
            EXECUTE format('CREATE TABLE lake.%I PARTITION OF lake.audit_log '
                           'FOR VALUES FROM (%L) TO (%L)',
                           v_part, v_from, v_from + interval '1 month');
        END IF;
        e := ROW(v_id + 1, v_at, p.occurred_at, p.action, p.object, p.db_role, p.lake_user,
                 p.service, p.client_addr, p.application, p.xact_id, p.detail, p.before, p.after,
                 v_prev, NULL, NULL)::lake.audit_log;
        v_hash := lake_internal._audit_hash(e);
        INSERT INTO lake.audit_log
        VALUES (e.id, e.at, e.occurred_at, e.action, e.object, e.db_role, e.lake_user, e.service,
                e.client_addr, e.application, e.xact_id, e.detail, e.before, e.after, e.prev_hash,
                v_hash);
        v_id := e.id;
        v_prev := v_hash;
        v_seqs := v_seqs || p.seq;
    END LOOP;
    IF cardinality(v_seqs) = 0 THEN
        RETURN 0;
    END IF;
    DELETE FROM lake.audit_pending WHERE seq = ANY (v_seqs);
    UPDATE lake_internal.audit_head SET last_id = v_id, last_hash = v_prev, last_at = v_at;
    RETURN cardinality(v_seqs);
END
$$;
ALTER FUNCTION lake_internal._seal_audit() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._seal_audit() FROM PUBLIC;
