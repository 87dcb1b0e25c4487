-- Establish this session's identity from the client certificate of its TLS handshake: the
-- service that lake.service_certs names for the certificate's serial and issuer (sslinfo), with
-- its scopes, until the certificate expires; nothing the client sends in SQL chooses or changes
-- it. The service may then lake.act_as() enabled users, exactly as after lake.authenticate() with
-- a service's API key. For the session (the default: the certificate is the connection's) or,
-- when asked, the transaction. Revoking the certificate (lake.revoke_service_cert) or disabling
-- the service ends the identity at the session's next statement.
--
-- Returns the service's id, or NULL when the connection presented no certificate, or one that is
-- unknown, revoked or expired, or the service is disabled: then any identity the session had is
-- dropped and the attempt is audited and logged, as lake.authenticate() does.
CREATE FUNCTION lake.authenticate_cert(scope text DEFAULT 'session')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_scope ALIAS FOR scope;
    v_nonce uuid := gen_random_uuid();  -- for a fresh identity
    h record;
    c lake.service_certs;
BEGIN
    PERFORM lake_internal._check_identity_scope(p_scope);
    SELECT * INTO h FROM lake_internal._handshake_cert();
    DELETE FROM lake_internal.session_identity WHERE backend_pid = pg_backend_pid();
    IF h.why IS NOT NULL THEN
        PERFORM lake_internal._audit('auth.failure', 'cert:' || coalesce(h.serial::text, '-'),
                                     jsonb_build_object('reason', h.why));
        RAISE LOG 'lake: certificate authentication failed for serial % (%), role %, client %',
            coalesce(h.serial::text, '(none)'), h.why, session_user, inet_client_addr();
        RAISE WARNING USING
            MESSAGE = 'lake: authentication failed: ' || h.why,
            HINT = 'Connect over TLS with a valid service certificate of the lake (sslcert, '
                   'sslkey); `lake certs list` shows them.';
        RETURN NULL;
    END IF;
    SELECT * INTO c FROM lake.service_certs AS s WHERE s.serial = h.serial;
    INSERT INTO lake_internal.session_identity
           (backend_pid, nonce, principal, principal_kind, key_id, auth_scope, auth_xact, scopes,
            expires_at)
    VALUES (pg_backend_pid(), v_nonce, c.service, 'service', 'cert:' || c.serial, p_scope,
            pg_current_xact_id(), c.scopes, c.not_after);
    PERFORM set_config('lake.identity_nonce', v_nonce::text, false);
    PERFORM lake_internal._audit('auth.success', c.service,
                        jsonb_build_object('certificate', c.serial::text, 'kind', 'service',
                                           'scope', p_scope, 'scopes', to_jsonb(c.scopes)));
    RETURN c.service;
END
$$;
ALTER FUNCTION lake.authenticate_cert(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.authenticate_cert(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.authenticate_cert(text) TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.authenticate_cert(text) IS
    'Establish the session''s identity (a service) from its TLS client certificate; returns the '
    'service, or NULL when refused. Audited.';
