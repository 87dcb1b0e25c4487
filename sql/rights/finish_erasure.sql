-- Complete an erasure after lake.erase_user committed (`lake erase` calls it, and each bridge
-- once it has passed the erasure's change event): deletes the archive files the erasure
-- superseded (once; they are marked purged), and closes the request (status done, the person's
-- id dropped from it, only its salted digest kept) when Redis is done too: the erasure's event
-- is sealed into lake.data_changes and every bridge's cursor (lake.bridge_cursors) is past it,
-- a bridge deleting the person's cache keys and stream entries before it moves on. A bridge
-- that is gone for good keeps erasures open: delete its cursor. Returns the report with the
-- request's status, files_deleted (how many files the erasure listed, gone now), and redis:
-- done, or the bridges still to pass the event.
-- Administrators only.
CREATE FUNCTION lake.finish_erasure(erasure_id bigint)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_erasure_id ALIAS FOR erasure_id;
    r        lake.erasure_requests;
    v_event  bigint;
    v_behind text[];
BEGIN
    IF NOT pg_has_role(session_user, 'lake_admin', 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'only a lake administrator may finish an erasure';
    END IF;
    SELECT * INTO r FROM lake.erasure_requests AS x WHERE x.id = p_erasure_id FOR UPDATE;
    IF NOT FOUND OR r.status = 'requested' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no erasure %s has been performed', p_erasure_id),
            HINT = 'lake.erase_user(user_id, reason) performs a requested erasure.';
    END IF;
    IF r.files_done_at IS NULL THEN
        PERFORM lake_internal._archive_remove(r.files);
        UPDATE lake.archives AS a SET purged_at = clock_timestamp()
         WHERE a.path = ANY (r.files) AND a.status IN ('superseded', 'failed')
           AND a.purged_at IS NULL;
        UPDATE lake.erasure_requests AS x SET files_done_at = clock_timestamp()
         WHERE x.id = r.id
        RETURNING x.* INTO r;
    END IF;

    SELECT max(c.id) INTO v_event FROM lake.data_changes AS c
     WHERE c.op = 'e' AND c.source ->> 'erasure' = r.id::text;
    IF v_event IS NULL THEN
        v_behind := ARRAY['(the erasure''s change event is not sealed yet: lake.seal())'];
    ELSE
        v_behind := ARRAY(SELECT b.name FROM lake.bridge_cursors AS b
                           WHERE b.last_id < v_event ORDER BY b.name);
    END IF;
    IF r.status = 'erased' AND cardinality(v_behind) = 0 THEN
        UPDATE lake.erasure_requests AS x
           SET status = 'done', user_id = NULL, done_at = clock_timestamp()
         WHERE x.id = r.id
        RETURNING x.* INTO r;
        PERFORM lake_internal._audit('user.erase_done', 'erasure ' || r.id,
                                     jsonb_build_object('erasure_id', r.id));
    END IF;
    RETURN r.report || jsonb_build_object(
        'status', r.status, 'files_deleted', cardinality(r.files), 'files_done_at', r.files_done_at,
        'done_at', r.done_at,
        'redis', CASE WHEN r.status = 'done' THEN to_jsonb('done'::text)
                      ELSE jsonb_build_object('waiting_for', to_jsonb(v_behind)) END);
END
$$;
ALTER FUNCTION lake.finish_erasure(bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.finish_erasure(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.finish_erasure(bigint) TO lake_admin;

COMMENT ON FUNCTION lake.finish_erasure(bigint) IS
    'Complete an erasure after its commit: delete the archive files it superseded; close it '
    'once every bridge has removed the person from Redis. Administrators.';
