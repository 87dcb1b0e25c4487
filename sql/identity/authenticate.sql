-- Establish this session's identity from an API key: a user's key makes the session that user
-- (lake.current_user_id()), with the key's scopes; a service's key makes it that service, which
-- may then lake.act_as() a user. For this transaction (the default) or, when asked, the session.
--
-- Returns the principal's id, or NULL when the key is malformed, unknown, wrong, revoked or
-- expired, or its principal is disabled: then any identity the session had is dropped, the
-- attempt goes to the audit log (committed with the transaction) and, at once, to the server log.
-- It returns NULL instead of raising so that the audit entry of a failed attempt survives in
-- autocommit mode; the reason is told only to the audit log.
CREATE FUNCTION lake.authenticate(api_key text, scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_api_key ALIAS FOR api_key;
    p_scope ALIAS FOR scope;
    v_nonce  uuid := gen_random_uuid();  -- for a fresh identity
    v_parts text[] := regexp_match(p_api_key, '^lake_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$');
    k       lake.api_keys;
    u       lake.users;
    v_why   text;
BEGIN
    PERFORM lake_internal._check_identity_scope(p_scope);
    IF v_parts IS NULL THEN
        v_why := 'malformed key';
    ELSE
        SELECT * INTO k FROM lake.api_keys WHERE id = v_parts[1];
        SELECT * INTO u FROM lake.users WHERE id = k.principal;
        v_why := CASE
            WHEN k.id IS NULL THEN 'unknown key'
            WHEN k.secret_sha256 <> public.digest(v_parts[2], 'sha256') THEN 'wrong secret'
            WHEN k.revoked_at IS NOT NULL THEN 'revoked key'
            WHEN k.expires_at <= now() THEN 'expired key'
            WHEN u.disabled_at IS NOT NULL THEN 'disabled ' || u.kind
        END;
    END IF;

    IF v_why IS NOT NULL THEN
        DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
        PERFORM lake_internal._audit('auth.failure', v_parts[1], jsonb_build_object('reason', v_why));
        RAISE LOG 'lake: authentication failed for key % (%), role %, client %',
            coalesce(v_parts[1], '(malformed)'), v_why, session_user, inet_client_addr();
        RAISE WARNING USING
            MESSAGE = 'lake: authentication failed: the API key is not valid',
            HINT = 'Check the key; an administrator can list, rotate or create keys.';
        RETURN NULL;
    END IF;

    DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
    INSERT INTO lake_internal.session_identity
           (backend_pid, nonce, principal, principal_kind, key_id, auth_scope, auth_xact, scopes,
            expires_at)
    VALUES (pg_backend_pid(), v_nonce, k.principal, u.kind, k.id, p_scope,
            pg_current_xact_id(), k.scopes, k.expires_at);
    PERFORM set_config('lake.identity_nonce', v_nonce::text, false);
    -- Never wait for the row: another transaction that authenticated with this key holds its
    -- lock until it ends (a service's concurrent gRPC calls, each a transaction, would queue
    -- behind each other's whole batch), and that one stamps last_used_at anyway.
    UPDATE lake.api_keys SET last_used_at = now()
     WHERE id = (SELECT a.id FROM lake.api_keys AS a WHERE a.id = k.id FOR UPDATE SKIP LOCKED);
    PERFORM lake_internal._audit('auth.success', k.principal,
                        jsonb_build_object('key_id', k.id, 'kind', u.kind, 'scope', p_scope,
                                           'scopes', to_jsonb(k.scopes)));
    RETURN k.principal;
END
$$;
ALTER FUNCTION lake.authenticate(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.authenticate(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.authenticate(text, text) TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.authenticate(text, text) IS
    'Establish the session''s identity from an API key; returns the principal, or NULL for a '
    'refused key. Audited.';
