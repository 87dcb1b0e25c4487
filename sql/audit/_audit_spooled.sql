-- Part of the sealer (lake.seal()): move the audit spool's entries (lake_internal._audit_refusal)
-- into lake.audit_pending, where the next seal chains them. Each keeps its spool file's name in
-- detail.spool; a file is deleted only by a later call that finds its entry in the audit (so a
-- rollback or crash between the two steps neither loses an entry nor adds one twice). Returns
-- how many entries it moved. Refusals are rare: the spool is usually empty.
CREATE FUNCTION lake_internal._audit_spooled()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f       record;
    v_entry lake.audit_pending;
    v_done  text[] := '{}';
    v_moved bigint := 0;
BEGIN
    FOR f IN SELECT * FROM lake_internal._spool_files() LOOP
        IF EXISTS (SELECT FROM lake.audit_pending AS p
                    WHERE p.action = f.entry ->> 'action' AND p.detail ->> 'spool' = f.name)
           OR EXISTS (SELECT FROM lake.audit_log AS l
                       WHERE l.at >= (f.entry ->> 'occurred_at')::timestamptz
                         AND l.action = f.entry ->> 'action' AND l.detail ->> 'spool' = f.name)
        THEN
            v_done := v_done || f.name;
            CONTINUE;
        END IF;
        -- The entry as it was refused, sealed by this transaction; the refused one is noted.
        v_entry := jsonb_populate_record(NULL::lake.audit_pending, f.entry || jsonb_build_object(
            'xact_id', pg_current_xact_id()::text,
            'detail', CASE WHEN jsonb_typeof(f.entry -> 'detail') = 'object'
                           THEN f.entry -> 'detail' ELSE '{}' END
                      || jsonb_build_object('spool', f.name,
                                            'refused_xact', f.entry ->> 'xact_id')));
        PERFORM lake_internal._audit_keep(v_entry);
        v_moved := v_moved + 1;
    END LOOP;
    IF cardinality(v_done) > 0 THEN
        PERFORM lake_internal._spool_files(v_done);
    END IF;
    RETURN v_moved;
END
$$;
ALTER FUNCTION lake_internal._audit_spooled() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_spooled() FROM PUBLIC;
