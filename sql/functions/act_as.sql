-- Establish the lake user for this session: for the current transaction (the default, so a
-- pooled connection never carries one user's identity into the next transaction) or, when asked,
-- for the rest of the session. Only lake administrators may call it; the governance layer adds
-- lake.authenticate(api_key) for users and services.
CREATE FUNCTION lake.act_as(p_user_id text, p_scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nonce uuid := gen_random_uuid();
BEGIN
    IF p_user_id IS NULL OR p_user_id !~ '^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'LK011',
            MESSAGE = format('invalid lake user id %L', left(p_user_id, 200)),
            HINT = 'A user id is 1-128 characters: letters, digits and . _ @ : + -, '
                   'starting with a letter or digit.';
    END IF;
    IF p_scope IS NULL OR p_scope NOT IN ('transaction', 'session') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'LK011',
            MESSAGE = format('invalid identity scope %L', p_scope),
            HINT = 'Use ''transaction'' (the default) or ''session''.';
    END IF;

    INSERT INTO lake.session_identity AS s
           (backend_pid, nonce, scope, xact_start, user_id, established_by)
    VALUES (pg_backend_pid(), v_nonce, p_scope, now(), p_user_id, session_user)
    ON CONFLICT (backend_pid) DO UPDATE
       SET nonce = excluded.nonce,
           scope = excluded.scope,
           xact_start = excluded.xact_start,
           user_id = excluded.user_id,
           established_by = excluded.established_by,
           established_at = clock_timestamp();

    PERFORM set_config('lake.identity_nonce', v_nonce::text, p_scope = 'transaction');
    RETURN p_user_id;
END
$$;
ALTER FUNCTION lake.act_as(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.act_as(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.act_as(text, text) TO lake_admin;
