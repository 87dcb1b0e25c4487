-- Deferred constraint trigger of lake.audit_pending: at commit, append the entry to the chain.
-- Locks the chain's head (lake_internal.audit_head) until the commit ends: committing transactions
-- queue there, so ids follow one another and every entry links to the one before. `at` never goes
-- back, even if the clock does, so months hold runs of ids. Makes the month's partition when it is
-- missing.
CREATE FUNCTION lake_internal._tg_audit_seal()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    h      lake_internal.audit_head;
    e      lake.audit_log;
    v_part text;
    v_from timestamptz;
    v_hash bytea;
BEGIN
    PERFORM lake_internal._require_commit();  -- not early: the lock is held until the transaction ends
    SELECT * INTO STRICT h FROM lake_internal.audit_head FOR UPDATE;
    e := ROW(h.last_id + 1, greatest(clock_timestamp(), h.last_at), NEW.occurred_at, NEW.action,
             NEW.object, NEW.db_role, NEW.lake_user, NEW.service, NEW.client_addr,
             NEW.application, NEW.xact_id, NEW.detail, NEW.before, NEW.after, h.last_hash,
             NULL)::lake.audit_log;
    v_from := date_trunc('month', e.at);
    v_part := 'audit_log_p' || to_char(v_from, 'YYYY_MM');
    IF to_regclass(format('lake.%I', v_part)) IS NULL THEN
        EXECUTE format('CREATE TABLE lake.%I PARTITION OF lake.audit_log '
                       'FOR VALUES FROM (%L) TO (%L)',
                       v_part, v_from, v_from + interval '1 month');
    END IF;
    v_hash := lake_internal._audit_hash(e);
    INSERT INTO lake.audit_log
    VALUES (e.id, e.at, e.occurred_at, e.action, e.object, e.db_role, e.lake_user, e.service,
            e.client_addr, e.application, e.xact_id, e.detail, e.before, e.after, e.prev_hash,
            v_hash);
    UPDATE lake_internal.audit_head SET last_id = e.id, last_hash = v_hash, last_at = e.at;
    DELETE FROM lake.audit_pending WHERE seq = NEW.seq;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_audit_seal() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_audit_seal() FROM PUBLIC;
