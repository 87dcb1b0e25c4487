-- Act for a lake user: for the current transaction (the default, so a pooled connection never
-- carries one user's identity into the next transaction) or, when asked, for the session.
-- Allowed to lake administrators (any valid user id, with read and write) and to a session of a
-- lake_service login that authenticated as a service, with its API key or its TLS client
-- certificate (lake.authenticate_cert): only enabled users of kind 'user', with the scopes of
-- the service's key or certificate. A service's own authentication outlives a
-- transaction-scoped act_as. Audited.
CREATE FUNCTION lake.act_as(user_id text, scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_user_id ALIAS FOR user_id;
    p_scope ALIAS FOR scope;
    v_nonce  uuid := gen_random_uuid();  -- for a fresh identity
    v_admin  boolean := pg_has_role(session_user, 'lake_admin', 'MEMBER');
    v_me     record;
    v_scopes text[];
BEGIN
    PERFORM lake_internal._check_user_id(p_user_id);
    PERFORM lake_internal._check_identity_scope(p_scope);
    SELECT * INTO v_me FROM lake_internal._identity();
    IF v_admin THEN
        v_scopes := ARRAY['read', 'write'];
    ELSIF v_me.service IS NOT NULL AND pg_has_role(session_user, 'lake_service', 'MEMBER') THEN
        IF NOT EXISTS (SELECT FROM lake.users AS u
                        WHERE u.id = p_user_id AND u.kind = 'user' AND u.disabled_at IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = 'LK012',
                MESSAGE = format('%L is not an enabled lake user', p_user_id),
                HINT = 'An administrator creates users with lake.create_user().';
        END IF;
        v_scopes := v_me.scopes;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = 'only a lake administrator, or a service that authenticated with its API '
                      'key or its client certificate, may act as a user',
            HINT = 'A service calls lake.authenticate(''<service key>'') or '
                   'lake.authenticate_cert() first; a user authenticates with its own key '
                   'instead.';
    END IF;

    IF v_me.principal IS NULL THEN
        -- Nothing to keep: a fresh identity with a fresh nonce.
        DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
        INSERT INTO lake_internal.session_identity (backend_pid, nonce, acting_user, act_scope, act_xact,
                                           scopes)
        VALUES (pg_backend_pid(), v_nonce, p_user_id, p_scope, pg_current_xact_id(),
                v_scopes);
        PERFORM set_config('lake.identity_nonce', v_nonce::text, false);
    ELSE
        -- Keep the authenticated principal (and its nonce); add whom it acts for.
        UPDATE lake_internal.session_identity
           SET acting_user = p_user_id, act_scope = p_scope, act_xact = pg_current_xact_id(),
               scopes = v_scopes, established_by = session_user,
               established_at = clock_timestamp()
         WHERE backend_pid = pg_backend_pid();
    END IF;
    PERFORM lake_internal._audit('identity.act_as', p_user_id,
                        jsonb_build_object('scope', p_scope,
                                           'by', CASE WHEN v_admin THEN 'administrator'
                                                      ELSE 'service' END));
    RETURN p_user_id;
END
$$;
ALTER FUNCTION lake.act_as(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.act_as(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.act_as(text, text) TO lake_admin, lake_service;

COMMENT ON FUNCTION lake.act_as(text, text) IS
    'Act for a user (administrators; services after authenticating with a service key), for the '
    'transaction or the session.';
