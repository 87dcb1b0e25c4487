-- The sealer: chain the committed audit entries (lake_internal._seal_audit) and number the
-- committed changes (lake_internal._seal_changes), in a transaction of its own, then wake the
-- readers of lake.data_changes (NOTIFY lake_changes, payload the last id). Writers only append to
-- the pending tables and lock nothing shared at commit; ordering and chaining happen here, after
-- their commit, in batches (as PgQ's ticker does). Everything lives in tables, so it survives a
-- crash and a failover. One sealer at a time: a second caller returns at once (audit_entries and
-- changes NULL). The bridge calls it on every wake-up, Lake.changes before reading, and the
-- pg_cron job seal every minute bounds the delay. Needs READ COMMITTED (each statement sees what
-- committed before it); in another isolation level it seals nothing and says so.
CREATE FUNCTION lake.seal(OUT audit_entries bigint, OUT changes bigint, OUT last_change_id bigint)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE WARNING 'lake.seal() seals nothing in a % transaction',
            current_setting('transaction_isolation')
            USING HINT = 'Call it in autocommit mode or a READ COMMITTED transaction.';
        RETURN;
    END IF;
    -- The key is the lake's own: 'lake.seal' as bytes.
    IF NOT pg_try_advisory_xact_lock(x'6c616b652e7365'::bigint) THEN
        RETURN;
    END IF;
    -- Numbers given out must never come back after a crash (the bridge forwards them at once),
    -- whatever the caller's setting (the bridge's session commits its cursor without waiting).
    PERFORM set_config('synchronous_commit', 'on', true);
    -- Refusals that raised left their entries in the audit spool; the next seal chains them.
    PERFORM lake_internal._audit_spooled();
    audit_entries := lake_internal._seal_audit();
    SELECT last_id INTO v_before FROM lake_internal.change_head;
    last_change_id := coalesce(lake_internal._seal_changes(), v_before);
    changes := last_change_id - v_before;
    IF changes > 0 THEN
        -- One NOTIFY per sealed batch, by the only sealer: no queue lock for writers to share.
        PERFORM pg_notify('lake_changes', last_change_id::text);
    END IF;
    -- A bridge killed while idle leaves the wake-up flag up, and every commit would NOTIFY (and
    -- take the notify queue's lock at commit) for no one: lower it when its session is gone. Only
    -- looked at while the flag is up, when no bridge is polling.
    IF (SELECT w.armed FROM lake_internal.sealer_wakeup AS w) THEN
        UPDATE lake_internal.sealer_wakeup AS w SET armed = false, pid = NULL
         WHERE w.armed AND NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = w.pid);
    END IF;
END
$$;
ALTER FUNCTION lake.seal() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.seal() TO lake_admin, lake_auditor;

COMMENT ON FUNCTION lake.seal() IS
    'Chain committed audit entries and number committed changes (one sealer at a time).';
