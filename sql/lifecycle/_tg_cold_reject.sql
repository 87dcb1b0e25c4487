-- Safety net of a cold (or expired) partition: a deferred constraint trigger, row by row, put on
-- the partition by the tiering step. The ingest paths already keep records of cold months out
-- (they quarantine them with the reason partition_cold, and an UPDATE into one is refused), so a
-- row that is still in the partition when the transaction commits was written around them (into
-- the partition directly): the commit fails. It runs at commit because a plain INSERT into
-- user_data.<dataset> puts the row here first and its validation trigger moves it to the
-- quarantine only at the end of the statement. DELETE is not checked: erasure stays possible.
CREATE FUNCTION lake_internal._tg_cold_reject()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kept boolean;
BEGIN
    -- Through the (user_id, ts) index: one probe, not a scan of the month.
    IF NEW.user_id IS NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %I.%I WHERE user_id IS NULL AND ts = $1'
                       ' AND id = $2)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO v_kept USING NEW.ts, NEW.id;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %I.%I WHERE user_id = $3 AND ts = $1'
                       ' AND id = $2)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO v_kept USING NEW.ts, NEW.id, NEW.user_id;
    END IF;
    IF v_kept THEN
        RAISE EXCEPTION USING ERRCODE = 'LK061',
            MESSAGE = format('partition %s is cold: it takes no new or changed rows', TG_TABLE_NAME),
            DETAIL = format('row id %s, time %s', NEW.id, NEW.ts),
            HINT = 'Cold months are read-only (DELETE stays possible); ingest through '
                   'user_data.<dataset> or lake.ingest quarantines such records instead.';
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_cold_reject() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_cold_reject() FROM PUBLIC;
