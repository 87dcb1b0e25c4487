-- Ask for a person's erasure (GDPR art. 17). With the person's own key (any scope): their own,
-- and only theirs (LK012 for anyone else); an administrator may record a request for anyone.
-- An administrator performs it (lake.erase_user). One open request per person: asking again
-- returns the open one. Audited (user.erase_request; the erasure redacts it with the rest).
-- Returns the request's id.
CREATE FUNCTION lake.request_erasure(user_id text DEFAULT NULL, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_user_id ALIAS FOR user_id;
    p_reason ALIAS FOR reason;
    v_admin boolean := pg_has_role(session_user, 'lake_admin', 'MEMBER');
    v_user  text := lake.current_user_id();
    v_id    bigint;
BEGIN
    IF p_user_id IS NOT NULL AND p_user_id IS DISTINCT FROM v_user AND NOT v_admin THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'only a lake administrator may request another user''s erasure',
            HINT = 'Call lake.request_erasure() with your own key to ask for your own.';
    END IF;
    v_user := coalesce(p_user_id, v_user);
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: whose erasure is requested?',
            HINT = 'Authenticate with the user''s API key, or name the user (administrators).';
    END IF;
    PERFORM lake_internal._check_user_id(v_user);
    IF NOT EXISTS (SELECT FROM lake.users AS u WHERE u.id = v_user) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no lake user %L', v_user);
    END IF;
    SELECT r.id INTO v_id FROM lake.erasure_requests AS r
     WHERE r.user_id = v_user AND r.status = 'requested';
    IF v_id IS NULL THEN
        INSERT INTO lake.erasure_requests AS r (user_id, salt, subject_sha256, reason, requested_by)
        SELECT v_user, s.salt, public.digest(s.salt || convert_to(v_user, 'UTF8'), 'sha256'),
               p_reason, CASE WHEN v_user = lake.current_user_id() THEN 'self' ELSE 'admin' END
          FROM (SELECT public.gen_random_bytes(16) AS salt) AS s
        ON CONFLICT (user_id) WHERE status = 'requested' DO NOTHING
        RETURNING r.id INTO v_id;
        IF v_id IS NULL THEN  -- a concurrent request won
            SELECT r.id INTO STRICT v_id FROM lake.erasure_requests AS r
             WHERE r.user_id = v_user AND r.status = 'requested';
        END IF;
    END IF;
    PERFORM lake_internal._audit('user.erase_request', v_user,
                                 jsonb_build_object('erasure_id', v_id));
    RETURN v_id;
END
$$;
ALTER FUNCTION lake.request_erasure(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.request_erasure(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.request_erasure(text, text) TO lake_read, lake_write, lake_admin;

COMMENT ON FUNCTION lake.request_erasure(text, text) IS
    'Ask for a person''s erasure (GDPR art. 17): one''s own with one''s key, anyone''s as an '
    'administrator. An administrator performs it (lake.erase_user). Returns the request id.';
