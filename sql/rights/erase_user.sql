-- Erase a person (GDPR art. 17) from every place the lake keeps data, in one transaction:
--   records      their rows of every dataset (user_data.<dataset>, all partitions)
--   archives     every archive file holding rows of theirs is written again without them and
--                verified (lake_internal._erase_archives); the old files are deleted after the
--                commit by lake.finish_erasure (deleting them before could lose the month's
--                only copy, should the transaction roll back)
--   quarantine   their quarantined items (theirs, or of their batches)
--   pii_findings where their records held personal identifiers
--   batches      their batches (counts, checksums, origins)
--   undo         their before-images (lake_internal.row_undo): no rollback brings them back;
--                checkpoints they made no longer name them
--   change log   their events in lake.data_changes and those waiting to be sealed
--   audit log    the entries about them are redacted (lake_internal._erase_audit): the chain
--                keeps that something happened, when, by which role, and still verifies
--   identity     their lake.users row, API keys, OAuth links and sessions
-- Redis, which the database cannot reach, is told by one change event (op 'e', dataset '*',
-- source.kind 'erase', source.erasure the request's id; no user id): every bridge, on that
-- event, deletes their cache keys and their stream entries before it goes on
-- (lake_client.bridge). The audit log keeps that an erasure happened (user.erase: the request's
-- id, the salted digest of the id, the counts), never whom or what.
-- Closes the person's open request (lake.request_erasure) or makes one. Administrators only;
-- the person may only request it. Returns the erasure report (counts per store, never values);
-- lake.finish_erasure(erasure_id) completes it after the commit (`lake erase` does both).
-- Writes that the person makes while the erasure runs are not erased: disable the user first
-- (lake.set_user_enabled) if they may still be writing.
CREATE FUNCTION lake.erase_user(user_id text, reason text)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    p_user_id ALIAS FOR user_id;
    p_reason ALIAS FOR reason;
    r        lake.erasure_requests;
    v_ds     record;
    v_n      bigint;
    v_m      bigint;
    v_recs   jsonb := '{}';
    v_arch   jsonb;
    v_report jsonb;
    v_counts jsonb := '{}';
    v_started timestamptz := clock_timestamp();  -- for lake_internal._record_duration
BEGIN
    IF NOT pg_has_role(session_user, 'lake_admin', 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'only a lake administrator may erase a user',
            HINT = 'A person may ask for their own erasure: lake.request_erasure().';
    END IF;
    PERFORM lake_internal._check_user_id(p_user_id);
    IF nullif(btrim(p_reason), '') IS NULL OR length(p_reason) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = 'erase_user needs a reason (1-1000 characters)',
            HINT = 'e.g. ''request of the person, ticket 1234''; it is kept with the request.';
    END IF;
    IF lake.current_user_id() IS NOT DISTINCT FROM p_user_id THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = 'the session acts as the user to erase',
            HINT = 'Call lake.reset_identity() first: the erasure''s own record must not name them.';
    END IF;

    SELECT * INTO r FROM lake.erasure_requests AS x
     WHERE x.user_id = p_user_id AND x.status = 'requested' FOR UPDATE;
    IF r.id IS NULL THEN
        INSERT INTO lake.erasure_requests AS x (user_id, salt, subject_sha256, reason, requested_by)
        SELECT p_user_id, s.salt, public.digest(s.salt || convert_to(p_user_id, 'UTF8'), 'sha256'),
               p_reason, 'admin'
          FROM (SELECT public.gen_random_bytes(16) AS salt) AS s
        RETURNING x.* INTO r;
    END IF;

    -- No retention run, restore or archived ingest while the person leaves the tables and the
    -- archives (the lock they take per dataset; in name order, as one run takes them).
    PERFORM pg_advisory_xact_lock(hashtext('lake.retention'), hashtext(d.name))
       FROM (SELECT x.name FROM lake.datasets AS x
             UNION SELECT a.dataset FROM lake.archives AS a ORDER BY 1) AS d;
    -- Counted first: most go with their records (lake_internal._tg_pii_forget).
    v_counts := jsonb_build_object('pii_findings', (SELECT count(*) FROM lake.pii_findings AS f
                                                     WHERE f.user_id = p_user_id));
    -- Records first: their deletes write change, audit and undo entries, erased below.
    FOR v_ds IN SELECT d.name FROM lake.datasets AS d ORDER BY d.name LOOP
        -- Their vectors first (derived from their records, never archived nor captured).
        IF EXISTS (SELECT FROM lake.embedding_models AS e WHERE e.dataset = v_ds.name) THEN
            EXECUTE format('DELETE FROM user_data.%I AS t WHERE t.user_id = $1',
                           v_ds.name || '__embeddings')
            USING p_user_id;
        END IF;
        EXECUTE format('DELETE FROM user_data.%I AS t WHERE t.user_id = $1', v_ds.name)
        USING p_user_id;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_recs := v_recs || jsonb_build_object(v_ds.name, v_n);
    END LOOP;
    v_counts := v_counts || jsonb_build_object('records', v_recs);

    v_arch := lake_internal._erase_archives(p_user_id, r.id);
    v_counts := v_counts || jsonb_build_object(
        'archives', jsonb_build_object('rewritten', v_arch -> 'archives',
                                       'records', v_arch -> 'records',
                                       'files_to_delete', jsonb_array_length(v_arch -> 'files')));

    DELETE FROM lake.quarantine AS q
     WHERE q.user_id = p_user_id
        OR q.batch_id IN (SELECT b.id FROM lake.batches AS b WHERE b.user_id = p_user_id);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('quarantine', v_n);

    DELETE FROM lake.pii_findings AS f WHERE f.user_id = p_user_id;

    DELETE FROM lake.batches AS b WHERE b.user_id = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('batches', v_n);
    -- Their quota usage (what deleting their rows left of it: records this hour).
    DELETE FROM lake.quota_usage AS u WHERE u.user_id = p_user_id;

    DELETE FROM lake_internal.row_undo AS u WHERE u.user_id = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('undo_images', v_n);
    UPDATE lake.checkpoints AS k SET lake_user = NULL WHERE k.lake_user = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('checkpoints', v_n);

    DELETE FROM lake_internal.change_pending AS c
     WHERE c.user_id = p_user_id OR c.before ->> 'user_id' = p_user_id
        OR c.after ->> 'user_id' = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    DELETE FROM lake.data_changes AS c
     WHERE c.user_id = p_user_id OR c.before ->> 'user_id' = p_user_id
        OR c.after ->> 'user_id' = p_user_id;
    GET DIAGNOSTICS v_m = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('change_events', v_n + v_m);

    DELETE FROM lake_internal.session_identity AS s
     WHERE s.principal = p_user_id OR s.acting_user = p_user_id;
    DELETE FROM lake.oauth_identities AS o WHERE o.user_id = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('oauth_identities', v_n);
    DELETE FROM lake.api_keys AS k WHERE k.principal = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('api_keys', v_n);
    DELETE FROM lake.users AS u WHERE u.id = p_user_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_counts := v_counts || jsonb_build_object('profile', v_n);

    -- Last: every entry above that could name them is written by now.
    v_counts := v_counts || jsonb_build_object(
        'audit_entries_redacted', lake_internal._erase_audit(p_user_id, r.id));

    INSERT INTO lake_internal.change_pending (dataset, user_id, op, source)
    VALUES ('*', NULL, 'e',
            lake_internal._change_source('user_data', '*',
                                         (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                                         'erase') || jsonb_build_object('erasure', r.id));
    PERFORM lake_internal._wake_sealer();

    v_report := jsonb_build_object('erasure_id', r.id, 'status', 'erased',
                                   'subject_sha256', encode(r.subject_sha256, 'hex'),
                                   'requested_by', r.requested_by,
                                   'requested_at', r.requested_at,
                                   'erased_at', clock_timestamp())
                || v_counts;
    UPDATE lake.erasure_requests AS x
       SET status = 'erased', erased_at = clock_timestamp(), erased_by = session_user,
           reason = coalesce(x.reason, p_reason), report = v_report,
           files = ARRAY(SELECT jsonb_array_elements_text(v_arch -> 'files'))
     WHERE x.id = r.id;
    PERFORM lake_internal._audit('user.erase', 'erasure ' || r.id,
                                 v_report - 'status' - 'requested_at');
    PERFORM lake_internal._record_duration('erasure', v_started);
    RETURN v_report;
END
$$;
ALTER FUNCTION lake.erase_user(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.erase_user(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.erase_user(text, text) TO lake_admin;

COMMENT ON FUNCTION lake.erase_user(text, text) IS
    'Erase a person (GDPR art. 17) from records, archives, quarantine, PII findings, batches, '
    'undo images, change log, audit payloads and identity; Redis through the bridges. '
    'Administrators. Returns the erasure report; lake.finish_erasure completes it after commit.';
