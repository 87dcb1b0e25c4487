-- Retire the PII keys that nothing uses any more: an older key (not the newest) whose seals are
-- gone from every dataset, the quarantine and the rollback images (lake_internal._pii_rekey
-- re-encrypted them) has its material erased. A key stays while an archive written in its time
-- is kept (status verified, dropped or restored: lake.restore_partition brings its rows back,
-- sealed as they were; the pii_keys job re-encrypts them then): such keys are reported as held.
-- Writers that are sealing (lake_internal._pii_encrypt's shared lock) are waited for, within the
-- lock_timeout setting, so that the rows they have not committed yet are seen; when they take
-- longer nothing is retired this time. Returns the ids retired and held. Audited.
CREATE FUNCTION lake_internal._pii_retire(OUT retired smallint[], OUT held smallint[])
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k       record;
    v_used  boolean;
    ds      record;
    v_wait  text := current_setting('lock_timeout');
BEGIN
    retired := '{}';
    held := '{}';
    IF NOT EXISTS (SELECT FROM lake_internal.pii_keys AS p
                    WHERE p.retired_at IS NULL
                      AND p.id < (SELECT max(m.id) FROM lake_internal.pii_keys AS m)) THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM set_config('lock_timeout', lake_internal._setting('lock_timeout'), true);
        PERFORM pg_advisory_xact_lock(hashtext('lake.pii_keys'), 0);
    EXCEPTION WHEN lock_not_available THEN  -- writers still sealing: next run
        RETURN;
    END;
    PERFORM set_config('lock_timeout', v_wait, true);
    FOR k IN
        SELECT p.id,
               (SELECT min(n.created_at) FROM lake_internal.pii_keys AS n WHERE n.id > p.id)
                   AS superseded_at
          FROM lake_internal.pii_keys AS p
         WHERE p.retired_at IS NULL
           AND p.id < (SELECT max(m.id) FROM lake_internal.pii_keys AS m)
         ORDER BY p.id
           FOR UPDATE OF p
    LOOP
        v_used := EXISTS (SELECT FROM lake.quarantine AS q
                           WHERE lake_internal._pii_key_of(q.pii) = k.id)
               OR EXISTS (SELECT FROM lake_internal.row_undo AS u
                           WHERE lake_internal._pii_key_of(u.pii) = k.id);
        FOR ds IN SELECT d.name FROM lake.datasets AS d WHERE NOT v_used LOOP
            EXECUTE format('SELECT EXISTS (SELECT FROM user_data.%I AS t '
                           'WHERE lake_internal._pii_key_of(t.pii) = $1)', ds.name)
            INTO v_used USING k.id;
            EXIT WHEN v_used;
        END LOOP;
        CONTINUE WHEN v_used;
        IF EXISTS (SELECT FROM lake.archives AS a
                    WHERE a.status IN ('verified', 'dropped', 'restored')
                      AND a.created_at < k.superseded_at) THEN
            held := held || k.id;
            CONTINUE;
        END IF;
        UPDATE lake_internal.pii_keys SET key = NULL, retired_at = now() WHERE id = k.id;
        PERFORM lake_internal._audit('pii.key_retire', k.id::text);
        retired := retired || k.id;
    END LOOP;
END
$$;
ALTER FUNCTION lake_internal._pii_retire() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_retire() FROM PUBLIC;
