-- One batch of re-encryption after a PII key rotation: in every dataset, in the quarantine and in
-- the before-images kept for rollback (lake_internal.row_undo), up to p_batch sealed values per
-- table that an older key sealed are opened and sealed again with the newest key. Only the pii
-- column changes, and it holds the same fields: a dataset's triggers (validation, audit, undo,
-- change capture, the row's writer xact_id) are switched off for this one UPDATE, inside this
-- transaction, so re-keying is not a change of the data (and a rollback's view of which row
-- versions a checkpoint saw stays right). That takes a lock that holds up writers of the dataset
-- until the transaction ends; a dataset whose lock is not had within the lock_timeout setting is
-- left for the next run. Returns per table how many values were re-encrypted (and which were
-- busy); audited per table.
CREATE FUNCTION lake_internal._pii_rekey(p_batch integer)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_newest smallint := (SELECT max(k.id) FROM lake_internal.pii_keys AS k);
    v_out    jsonb := '{}';
    v_n      bigint;
    v_trg    name[];
    v_t      name;
    v_wait   text := current_setting('lock_timeout');
    ds       record;
BEGIN
    IF NOT EXISTS (SELECT FROM lake_internal.pii_keys AS k
                    WHERE k.retired_at IS NULL AND k.id < v_newest) THEN
        RETURN v_out;  -- nothing sealed with an older key can be left
    END IF;
    FOR ds IN SELECT d.name FROM lake.datasets AS d ORDER BY d.name LOOP
        BEGIN
            PERFORM set_config('lock_timeout', lake_internal._setting('lock_timeout'), true);
            v_trg := ARRAY(SELECT t.tgname FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = format('user_data.%I', ds.name)::regclass
                              AND NOT t.tgisinternal AND t.tgenabled <> 'D'
                            ORDER BY t.tgname);
            FOREACH v_t IN ARRAY v_trg LOOP
                EXECUTE format('ALTER TABLE user_data.%I DISABLE TRIGGER %I', ds.name, v_t);
            END LOOP;
            EXECUTE format($q$
                UPDATE user_data.%1$I AS t
                   SET pii = lake_internal._pii_encrypt(lake_internal._pii_decrypt(t.pii))
                 WHERE t.id = ANY (ARRAY(SELECT s.id FROM user_data.%1$I AS s
                                          WHERE lake_internal._pii_key_of(s.pii) < $1
                                          LIMIT $2))
                   AND lake_internal._pii_key_of(t.pii) < $1$q$, ds.name)
            USING v_newest, p_batch;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            FOREACH v_t IN ARRAY v_trg LOOP
                EXECUTE format('ALTER TABLE user_data.%I ENABLE TRIGGER %I', ds.name, v_t);
            END LOOP;
            PERFORM set_config('lock_timeout', v_wait, true);
        EXCEPTION WHEN lock_not_available THEN  -- (the setting is undone with the block)
            v_out := v_out || jsonb_build_object(ds.name, 'busy');
            CONTINUE;
        END;
        IF v_n > 0 THEN
            v_out := v_out || jsonb_build_object(ds.name, v_n);
            PERFORM lake_internal._audit('pii.rekey', ds.name,
                                jsonb_build_object('rows', v_n, 'key', v_newest));
        END IF;
    END LOOP;

    UPDATE lake.quarantine AS q
       SET pii = lake_internal._pii_encrypt(lake_internal._pii_decrypt(q.pii))
     WHERE q.id = ANY (ARRAY(SELECT s.id FROM lake.quarantine AS s
                              WHERE lake_internal._pii_key_of(s.pii) < v_newest LIMIT p_batch))
       AND lake_internal._pii_key_of(q.pii) < v_newest;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        v_out := v_out || jsonb_build_object('(quarantine)', v_n);
        PERFORM lake_internal._audit('pii.rekey', 'lake.quarantine',
                            jsonb_build_object('rows', v_n, 'key', v_newest));
    END IF;

    UPDATE lake_internal.row_undo AS u
       SET pii = lake_internal._pii_encrypt(lake_internal._pii_decrypt(u.pii))
     WHERE u.ctid = ANY (ARRAY(SELECT s.ctid FROM lake_internal.row_undo AS s
                                WHERE lake_internal._pii_key_of(s.pii) < v_newest LIMIT p_batch));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        v_out := v_out || jsonb_build_object('(rollback images)', v_n);
        PERFORM lake_internal._audit('pii.rekey', 'lake_internal.row_undo',
                            jsonb_build_object('rows', v_n, 'key', v_newest));
    END IF;
    RETURN v_out;
END
$$;
ALTER FUNCTION lake_internal._pii_rekey(integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_rekey(integer) FROM PUBLIC;
