-- Establish this session's identity from an OpenID Connect ID token that the lake checks itself
-- (lake_internal._oidc_verify: signature against the provider's stored keys, issuer, audience,
-- expiry, and the nonce the caller expects): the provider's subject is mapped through
-- lake.oauth_identities to its lake user, and the session becomes that user with the link's
-- scopes, for this transaction (the default) or the session, and no longer than the token is
-- valid. Like lake.authenticate() it returns NULL instead of raising for a refused token, so the
-- audit entry of the attempt (with the reason, never the token) survives in autocommit mode.
CREATE FUNCTION lake.authenticate_oidc(token text, nonce text, scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_token ALIAS FOR token;
    p_nonce ALIAS FOR nonce;
    p_scope ALIAS FOR scope;
    v_nonce uuid := gen_random_uuid();  -- the session identity's, not the token's
    v       jsonb;
    o       lake.oauth_identities;
    u       lake.users;
    v_why   text;
BEGIN
    PERFORM lake_internal._check_identity_scope(p_scope);
    v := lake_internal._oidc_verify(p_token, p_nonce);
    v_why := v ->> 'reason';
    IF v_why IS NULL THEN
        SELECT * INTO o FROM lake.oauth_identities AS i
         WHERE i.provider = v ->> 'provider' AND i.subject = v ->> 'sub';
        SELECT * INTO u FROM lake.users AS x WHERE x.id = o.user_id;
        v_why := CASE WHEN o.user_id IS NULL THEN 'no lake user linked'
                      WHEN u.disabled_at IS NOT NULL THEN 'disabled user' END;
    END IF;

    IF v_why IS NOT NULL THEN
        DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
        PERFORM lake_internal._audit('auth.failure', coalesce(v ->> 'provider', 'oidc'),
                            jsonb_build_object('method', 'oidc', 'reason', v_why,
                                               'kid', v -> 'kid', 'subject', v -> 'sub'));
        RAISE LOG 'lake: OIDC sign-in failed (%), provider %, role %, client %',
            v_why, coalesce(v ->> 'provider', '(unknown)'), session_user, inet_client_addr();
        RAISE WARNING USING
            MESSAGE = 'lake: sign-in failed: the ID token is not valid',
            HINT = CASE WHEN v_why = 'unknown signing key'
                        THEN 'The provider may have rotated its keys: refresh them (lake oidc '
                             'refresh) and retry once.'
                        ELSE 'Sign in again for a fresh token.' END;
        RETURN NULL;
    END IF;

    DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
    INSERT INTO lake_internal.session_identity
           (backend_pid, nonce, principal, principal_kind, key_id, auth_scope, auth_xact, scopes,
            expires_at)
    VALUES (pg_backend_pid(), v_nonce, u.id, 'user', NULL, p_scope, pg_current_xact_id(),
            o.scopes, to_timestamp((v ->> 'exp')::double precision));
    PERFORM set_config('lake.identity_nonce', v_nonce::text, false);
    PERFORM lake_internal._audit('auth.success', u.id,
                        jsonb_build_object('method', 'oidc', 'provider', v -> 'provider',
                                           'subject', v -> 'sub', 'kid', v -> 'kid',
                                           'scope', p_scope, 'scopes', to_jsonb(o.scopes)));
    RETURN u.id;
END
$$;
ALTER FUNCTION lake.authenticate_oidc(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.authenticate_oidc(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.authenticate_oidc(text, text, text) TO lake_admin, lake_read,
    lake_write;

COMMENT ON FUNCTION lake.authenticate_oidc(text, text, text) IS
    'Establish the session''s identity from an OpenID Connect ID token the lake checks itself '
    '(signature, issuer, audience, expiry, nonce); returns the user, or NULL for a refused token. '
    'Audited.';
