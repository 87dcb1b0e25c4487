-- Drop the audit log's months that lie wholly more than 365 days before now (default: now),
-- and advance the chain's first_id past them, so lake.verify_audit_chain() checks from the
-- oldest entry kept. Dropping, not deleting: the append-only guard stays intact. Takes the
-- chain's lock, so no seal appends meanwhile. Returns how many months were dropped. The
-- lifecycle jobs call it; administrators may.
CREATE FUNCTION lake.purge_audit_log(now timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_now ALIAS FOR now;
    h       lake_internal.audit_head;
    p       record;
    v_last  bigint;
    v_n     integer := 0;
    v_first bigint;
BEGIN
    SELECT * INTO STRICT h FROM lake_internal.audit_head FOR UPDATE;
    v_first := h.first_id;
    FOR p IN
        SELECT i.inhrelid::regclass AS part, b.range_to AS upper_bound
          FROM pg_inherits AS i,
               lake_internal._partition_bounds(i.inhrelid::regclass) AS b
         WHERE i.inhparent = 'lake.audit_log'::regclass
         ORDER BY 2 NULLS FIRST
    LOOP
        -- A bound that cannot be read is never taken as old.
        EXIT WHEN p.upper_bound IS NULL OR p.upper_bound > p_now - interval '365 days';
        EXECUTE format('SELECT max(id) FROM %s', p.part) INTO v_last;
        EXECUTE format('DROP TABLE %s', p.part);
        IF v_last IS NOT NULL AND v_last >= v_first THEN
            v_first := v_last + 1;
        END IF;
        v_n := v_n + 1;
    END LOOP;
    IF v_n > 0 THEN
        UPDATE lake_internal.audit_head SET first_id = v_first;
        PERFORM lake_internal._audit('audit.purge', 'lake.audit_log',
                            jsonb_build_object('months', v_n, 'first_id', v_first));
    END IF;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake.purge_audit_log(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.purge_audit_log(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.purge_audit_log(timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.purge_audit_log(timestamptz) IS
    'Drop the audit log''s months wholly older than 365 days before now. Administrators.';
