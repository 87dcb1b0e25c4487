-- AFTER INSERT statement trigger of inbox.<dataset>: hand the statement's rows to
-- user_data.<dataset> as the session's lake user (the validation trigger there quarantines what
-- is invalid), making partitions on demand first, then empty the inbox of this transaction's
-- rows. Runs as lake_owner, the only role that may write user_data for a user it establishes.
CREATE FUNCTION lake._tg_inbox()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    ds      lake.datasets;
    v_user  text := lake.current_user_id();
    v_lo    timestamptz;
    v_hi    timestamptz;
    v_seq   text := current_setting('enable_seqscan');
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: every record needs an owner',
            HINT = 'An administrator calls lake.act_as(''<user id>'') first.';
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = TG_TABLE_NAME;
    IF NOT FOUND OR TG_TABLE_SCHEMA <> 'inbox' THEN
        RAISE EXCEPTION 'lake._tg_inbox: %.% is not a lake inbox', TG_TABLE_SCHEMA, TG_TABLE_NAME;
    END IF;

    SELECT min(ts), max(ts) INTO v_lo, v_hi
      FROM new_rows
     WHERE ts >= now() - ds.retention AND ts <= now() + ds.max_future;
    IF v_lo < ds.partitions_from OR v_hi >= ds.partitions_to THEN
        PERFORM lake.ensure_partitions(ds.name, v_lo, v_hi);
    END IF;

    EXECUTE format('INSERT INTO user_data.%I (user_id, ts, doc, batch_id)'
                   ' SELECT $1, ts, doc, batch_id FROM new_rows', ds.name)
    USING v_user;
    -- The inbox holds few live rows but many dead ones between vacuums: find this transaction's
    -- rows through the xact_id index, never by scanning the table.
    PERFORM set_config('enable_seqscan', 'off', true);
    EXECUTE format('DELETE FROM inbox.%I WHERE xact_id = pg_current_xact_id()', ds.name);
    PERFORM set_config('enable_seqscan', v_seq, true);
    RETURN NULL;
END
$$;
ALTER FUNCTION lake._tg_inbox() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._tg_inbox() FROM PUBLIC;
