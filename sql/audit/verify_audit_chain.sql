-- Check the audit log's hash chain from lake_internal.audit_head.first_id to the head: every
-- entry's hash matches its content, every entry links to the one before, no id is missing, and the
-- newest entry is the head. Returns ok, how many entries were checked, and the first problem found
-- (its entry id and what is wrong), or NULLs when the chain is whole; and how many committed
-- entries wait for the sealer (lake.seal()) and how long the oldest has waited since it happened
-- (the sealer's delay, bounded by the minute of the seal job).
CREATE FUNCTION lake.verify_audit_chain()
RETURNS TABLE (ok boolean, entries bigint, first_bad_id bigint, problem text, pending bigint,
               pending_age interval)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h       lake_internal.audit_head;
    v_count bigint;
    v_last  lake.audit_log;
    v_wait  bigint;
    v_age   interval;
BEGIN
    SELECT count(*), now() - min(p.occurred_at) INTO v_wait, v_age FROM lake.audit_pending AS p;
    SELECT * INTO STRICT h FROM lake_internal.audit_head;
    SELECT count(*) INTO v_count FROM lake.audit_log;

    RETURN QUERY
    WITH c AS (
        SELECT e.id, e.hash, e.prev_hash, lake_internal._audit_hash(e) AS expected,
               lag(e.id) OVER w AS before_id, lag(e.hash) OVER w AS before_hash
          FROM lake.audit_log AS e
        WINDOW w AS (ORDER BY e.id)
    )
    SELECT false, v_count, c.id,
           CASE WHEN c.before_id IS NULL AND c.id <> h.first_id
                    THEN format('entries %s to %s are missing', h.first_id, c.id - 1)
                WHEN c.before_id IS NOT NULL AND c.id <> c.before_id + 1
                    THEN format('entries %s to %s are missing', c.before_id + 1, c.id - 1)
                WHEN c.hash IS DISTINCT FROM c.expected
                    THEN format('entry %s was altered: its hash does not match its content', c.id)
                ELSE format('entry %s does not link to entry %s', c.id, c.before_id) END,
           v_wait, v_age
      FROM c
     WHERE (c.before_id IS NULL AND c.id <> h.first_id)
        OR (c.before_id IS NOT NULL AND c.id <> c.before_id + 1)
        OR c.hash IS DISTINCT FROM c.expected
        OR (c.before_id IS NOT NULL AND c.prev_hash IS DISTINCT FROM c.before_hash)
     ORDER BY c.id
     LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;

    SELECT * INTO v_last FROM lake.audit_log ORDER BY id DESC LIMIT 1;
    IF coalesce(v_last.id, h.first_id - 1) <> h.last_id
       OR (v_last.id IS NOT NULL AND v_last.hash IS DISTINCT FROM h.last_hash) THEN
        RETURN QUERY SELECT false, v_count, coalesce(v_last.id, 0) + 1,
            format('entries %s to %s are missing (the chain''s head is entry %s)',
                   coalesce(v_last.id, h.first_id - 1) + 1, h.last_id, h.last_id), v_wait, v_age;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, v_count, NULL::bigint, NULL::text, v_wait, v_age;
END
$$;
ALTER FUNCTION lake.verify_audit_chain() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.verify_audit_chain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.verify_audit_chain() TO lake_admin, lake_auditor;

COMMENT ON FUNCTION lake.verify_audit_chain() IS 'Check every link of the audit log''s hash chain.';
