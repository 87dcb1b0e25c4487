-- Redact a person from the audit log (for lake.erase_user): every entry about them, chained or
-- still pending, keeps what happened and when (action, times, role, service, transaction) and
-- loses what it said about them: lake_user when it is theirs (with their connection's address
-- and application), object when it names them (or an OAuth subject), detail when it is about them
-- (their own acts, or it mentions them: replaced by {"erased": <erasure id>}), and their rows in
-- before and after (lake_internal._erase_rows). A chained entry keeps in `erased` the digest of
-- its payload as written, which its hash covers, so lake.verify_audit_chain() still holds
-- (lake_internal._tg_audit_immutable allows exactly this). Returns how many entries changed.
CREATE FUNCTION lake_internal._erase_audit(p_user text, p_erasure bigint)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_vars jsonb := jsonb_build_object('u', p_user);
    v_mark jsonb := jsonb_build_object('erased', p_erasure);
    v_n    bigint;
    v_m    bigint;
BEGIN
    WITH hit AS (
        SELECT a.id, a.at,
               (a.lake_user = p_user OR a.object = p_user
                OR coalesce(jsonb_path_exists(a.detail, '$.** ? (@ == $u)', v_vars), false))
                   AS about
          FROM lake.audit_log AS a
         WHERE a.lake_user = p_user OR a.object = p_user
            OR jsonb_path_exists(a.detail, '$.** ? (@ == $u)', v_vars)
            OR jsonb_path_exists(a.before, '$.** ? (@ == $u)', v_vars)
            OR jsonb_path_exists(a.after, '$.** ? (@ == $u)', v_vars))
    UPDATE lake.audit_log AS a
       SET erased = coalesce(a.erased, lake_internal._audit_payload(a)),
           lake_user = CASE WHEN a.lake_user = p_user THEN NULL ELSE a.lake_user END,
           client_addr = CASE WHEN a.lake_user = p_user THEN NULL ELSE a.client_addr END,
           application = CASE WHEN a.lake_user = p_user THEN NULL ELSE a.application END,
           object = CASE WHEN a.object = p_user OR a.action = 'oauth.link' THEN NULL
                         ELSE a.object END,
           detail = CASE WHEN h.about THEN v_mark ELSE a.detail END,
           before = lake_internal._erase_rows(a.before, p_user),
           after = lake_internal._erase_rows(a.after, p_user)
      FROM hit AS h
     WHERE a.id = h.id AND a.at = h.at;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    -- Entries not chained yet (this transaction's own deletes among them) have no hash to keep.
    UPDATE lake.audit_pending AS p
       SET lake_user = CASE WHEN p.lake_user = p_user THEN NULL ELSE p.lake_user END,
           client_addr = CASE WHEN p.lake_user = p_user THEN NULL ELSE p.client_addr END,
           application = CASE WHEN p.lake_user = p_user THEN NULL ELSE p.application END,
           object = CASE WHEN p.object = p_user OR p.action = 'oauth.link' THEN NULL
                         ELSE p.object END,
           detail = CASE WHEN p.lake_user = p_user OR p.object = p_user
                              OR coalesce(jsonb_path_exists(p.detail, '$.** ? (@ == $u)', v_vars),
                                          false)
                         THEN v_mark ELSE p.detail END,
           before = lake_internal._erase_rows(p.before, p_user),
           after = lake_internal._erase_rows(p.after, p_user)
     WHERE p.lake_user = p_user OR p.object = p_user
        OR jsonb_path_exists(p.detail, '$.** ? (@ == $u)', v_vars)
        OR jsonb_path_exists(p.before, '$.** ? (@ == $u)', v_vars)
        OR jsonb_path_exists(p.after, '$.** ? (@ == $u)', v_vars);
    GET DIAGNOSTICS v_m = ROW_COUNT;
    RETURN v_n + v_m;
END
$$;
ALTER FUNCTION lake_internal._erase_audit(text, bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._erase_audit(text, bigint) FROM PUBLIC;
