-- Review decision: record that a quarantined record will not enter the lake, and why. The item
-- stays (with its payload) as the record of that decision.
CREATE FUNCTION lake.quarantine_discard(id bigint, reason text)
RETURNS lake.quarantine
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_id ALIAS FOR id;
    p_reason ALIAS FOR reason;
    q lake.quarantine;
BEGIN
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = 'a discard decision needs a reason',
            HINT = 'lake.quarantine_discard(id, ''duplicate of an earlier export'')';
    END IF;
    q := lake_internal._undecided_item(p_id);
    UPDATE lake.quarantine
       SET status = 'discarded', decided_at = now(), decided_by = session_user,
           decision_note = left(p_reason, 2000)
     WHERE id = p_id
    RETURNING * INTO q;
    PERFORM lake_internal._audit('quarantine.discard', q.dataset,
                        jsonb_build_object('quarantine_id', p_id, 'reason', q.decision_note));
    RETURN q;
END
$$;
ALTER FUNCTION lake.quarantine_discard(bigint, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_discard(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_discard(bigint, text) TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_discard(bigint, text) IS
    'Record that a quarantined item will not enter, and why. Administrators.';
