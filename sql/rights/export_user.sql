-- Everything the lake holds about one person (GDPR art. 15 and 20), as lines of JSON in parts,
-- for lake_client.export to write into a zip of JSON Lines with a manifest. The person is the
-- session's user (own API key, read scope); an administrator names anyone, and the function
-- then acts for that person (lake.act_as, for the rest of the transaction), so the datasets'
-- tables are read under row-level security as the person in both cases. Each part starts with
-- a row whose line is NULL (so an empty part is still a file), then its lines in order:
--   profile.jsonl             the lake.users row
--   records/<dataset>.jsonl   every record: archived months (read back from the archive files
--                             of dropped months), then the table; pii_fields in clear
--   quarantine.jsonl          their quarantined items (pii_fields in clear)
--   pii_findings.jsonl        where their records hold personal identifiers
--   audit_log.jsonl           the audit entries about them (lake_user = the person): the
--                             chained ones, then those the sealer has not chained yet
-- A set-returning PL/pgSQL function keeps its result in a tuplestore that spills to disk past
-- work_mem, and the client reads it through a cursor: memory does not grow with the person's
-- data on either side. Audited as user.export (at commit).
CREATE FUNCTION lake.export_user(user_id text DEFAULT NULL)
RETURNS TABLE (part text, line text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET "TimeZone" = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    p_user_id ALIAS FOR user_id;
    v_admin boolean := pg_has_role(session_user, 'lake_admin', 'MEMBER');
    v_user  text := lake.current_user_id();
    v_ds    record;
    v_arch  record;
    v_parts text[] := ARRAY[]::text[];
    v_started timestamptz := clock_timestamp();  -- for lake_internal._record_duration
BEGIN
    IF p_user_id IS NOT NULL AND p_user_id IS DISTINCT FROM v_user THEN
        IF NOT v_admin THEN
            RAISE EXCEPTION USING ERRCODE = 'LK012',
                MESSAGE = 'only a lake administrator may export another user''s data',
                HINT = 'Call lake.export_user() with your own key to export your own data.';
        END IF;
        IF NOT EXISTS (SELECT FROM lake.users AS u WHERE u.id = p_user_id) THEN
            RAISE EXCEPTION USING ERRCODE = 'LK012',
                MESSAGE = format('no lake user %L', left(p_user_id, 130));
        END IF;
        PERFORM lake.act_as(p_user_id, 'transaction');
        v_user := lake.current_user_id();
    END IF;
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: whose data should be exported?',
            HINT = 'Authenticate with the user''s API key, or name the user (administrators).';
    END IF;
    IF NOT lake.has_scope('read') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'exporting needs an identity with the read scope';
    END IF;

    RETURN QUERY SELECT 'profile.jsonl', NULL::text;
    RETURN QUERY
        SELECT 'profile.jsonl', jsonb_build_object(
                   'id', u.id, 'kind', u.kind, 'display_name', u.display_name,
                   'created_at', u.created_at, 'disabled_at', u.disabled_at)::text
          FROM lake.users AS u WHERE u.id = v_user;

    FOR v_ds IN SELECT d.name FROM lake.datasets AS d ORDER BY d.name LOOP
        v_parts := v_parts || v_ds.name;
        RETURN QUERY SELECT 'records/' || v_ds.name || '.jsonl', NULL::text;
        -- Months whose partition was dropped live only in their archive; other archives
        -- (verified, restored) stand for a partition that the table still has.
        FOR v_arch IN
            SELECT a.path, a.month FROM lake.archives AS a
             WHERE a.dataset = v_ds.name AND a.status = 'dropped'
             ORDER BY a.month
        LOOP
            RETURN QUERY
                SELECT 'records/' || v_ds.name || '.jsonl',
                       jsonb_build_object(
                           'id', (r->>'id')::bigint,
                           'ts', (r->>'ts')::timestamptz,
                           'doc', lake_internal._pii_open(
                                      r->'doc',
                                      decode(substr(r->>'pii', 3), 'hex')),
                           'batch_id', r->'batch_id',
                           'ingested_at', (r->>'ingested_at')::timestamptz,
                           'archived', to_char(v_arch.month, 'YYYY-MM'))::text
                  FROM lake_internal._archive_lines(v_arch.path) AS l(txt),
                       LATERAL (SELECT l.txt::jsonb AS r) AS j
                 WHERE r->>'user_id' = v_user
                 ORDER BY (r->>'ts')::timestamptz, (r->>'id')::bigint;
        END LOOP;
        RETURN QUERY EXECUTE format($q$
            SELECT $1, jsonb_build_object(
                       'id', t.id, 'ts', t.ts, 'doc', lake_internal._pii_open(t.doc, t.pii),
                       'batch_id', t.batch_id, 'ingested_at', t.ingested_at,
                       'archived', NULL)::text
              FROM user_data.%I AS t
             WHERE t.user_id = $2
             ORDER BY t.ts, t.id$q$, v_ds.name)
        USING 'records/' || v_ds.name || '.jsonl', v_user;
    END LOOP;

    RETURN QUERY SELECT 'quarantine.jsonl', NULL::text;
    RETURN QUERY
        SELECT 'quarantine.jsonl',
               (to_jsonb(q) - 'pii'
                || jsonb_build_object('doc', lake_internal._pii_open(q.doc, q.pii)))::text
          FROM lake.quarantine AS q
         WHERE q.user_id = v_user
         ORDER BY q.id;

    RETURN QUERY SELECT 'pii_findings.jsonl', NULL::text;
    RETURN QUERY
        SELECT 'pii_findings.jsonl', to_jsonb(f)::text
          FROM lake.pii_findings AS f
         WHERE f.user_id = v_user
         ORDER BY f.id;

    RETURN QUERY SELECT 'audit_log.jsonl', NULL::text;
    RETURN QUERY
        SELECT 'audit_log.jsonl', to_jsonb(a)::text
          FROM lake.audit_log AS a
         WHERE a.lake_user = v_user
         ORDER BY a.id;
    -- Entries committed but not chained yet (the sealer runs after commit): theirs too.
    RETURN QUERY
        SELECT 'audit_log.jsonl', (to_jsonb(p) || '{"pending": true}')::text
          FROM lake.audit_pending AS p
         WHERE p.lake_user = v_user
         ORDER BY p.seq;

    PERFORM lake_internal._audit('user.export', v_user,
                                 jsonb_build_object('datasets', to_jsonb(v_parts),
                                                    'as_admin', p_user_id IS NOT NULL
                                                                AND v_admin));
    PERFORM lake_internal._record_duration('export', v_started);
END
$$;
ALTER FUNCTION lake.export_user(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.export_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.export_user(text) TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.export_user(text) IS
    'Everything the lake holds about a person (GDPR art. 15, 20) as (part, line) rows: profile, '
    'records of every dataset (archived months too), quarantine, PII findings, audit entries. '
    'Own key, or an administrator naming the user. Audited (user.export).';
