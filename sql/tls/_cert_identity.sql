-- Establish the session's identity as the service of a service certificate, or refuse it:
-- the body that lake.authenticate_cert (PostgreSQL's handshake) and lake.authenticate_peer_cert
-- (a door's handshake) share. p_why is the refusal (NULL: the certificate identifies its
-- service), p_door the login that vouched for the handshake (NULL: PostgreSQL did), p_hint what
-- a refused caller is told to do. Any identity the session had is dropped first; success and
-- failure are audited and a failure logged, as lake.authenticate() does.
CREATE FUNCTION lake_internal._cert_identity(p_serial numeric, p_why text, p_scope text,
                                             p_door name, p_hint text)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nonce uuid := gen_random_uuid();  -- for a fresh identity
    c lake.service_certs;
BEGIN
    PERFORM lake_internal._check_identity_scope(p_scope);
    DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
    IF p_why IS NOT NULL THEN
        PERFORM lake_internal._audit('auth.failure', 'cert:' || coalesce(p_serial::text, '-'),
                                     jsonb_strip_nulls(jsonb_build_object('reason', p_why,
                                                                          'door', p_door)));
        RAISE LOG 'lake: certificate authentication failed for serial % (%), role %, client %',
            coalesce(p_serial::text, '(none)'), p_why, session_user,
            coalesce(p_door::text, inet_client_addr()::text);
        RAISE WARNING USING MESSAGE = 'lake: authentication failed: ' || p_why, HINT = p_hint;
        RETURN NULL;
    END IF;
    SELECT * INTO c FROM lake.service_certs AS s WHERE s.serial = p_serial;
    INSERT INTO lake_internal.session_identity
           (backend_pid, nonce, principal, principal_kind, key_id, auth_scope, auth_xact, scopes,
            expires_at)
    VALUES (pg_backend_pid(), v_nonce, c.service, 'service', 'cert:' || c.serial, p_scope,
            pg_current_xact_id(), c.scopes, c.not_after);
    PERFORM set_config('lake.identity_nonce', v_nonce::text, false);
    PERFORM lake_internal._audit('auth.success', c.service,
                        jsonb_strip_nulls(jsonb_build_object(
                            'certificate', c.serial::text, 'kind', 'service', 'scope', p_scope,
                            'scopes', to_jsonb(c.scopes), 'door', p_door)));
    RETURN c.service;
END
$$;
ALTER FUNCTION lake_internal._cert_identity(numeric, text, text, name, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._cert_identity(numeric, text, text, name, text) FROM PUBLIC;
