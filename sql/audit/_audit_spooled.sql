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
        INSERT INTO lake.audit_pending
               (occurred_at, action, object, db_role, lake_user, service, client_addr,
                application, xact_id, detail)
        VALUES ((f.entry ->> 'occurred_at')::timestamptz, f.entry ->> 'action',
                f.entry ->> 'object', f.entry ->> 'db_role', f.entry ->> 'lake_user',
                f.entry ->> 'service', (f.entry ->> 'client_addr')::inet,
                f.entry ->> 'application', pg_current_xact_id(),
                coalesce(f.entry -> 'detail', '{}')
                    || jsonb_build_object('spool', f.name,
                                          'refused_xact', f.entry ->> 'xact_id'));
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
