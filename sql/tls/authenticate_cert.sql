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
    h record;
BEGIN
    SELECT * INTO h FROM lake_internal._handshake_cert();
    RETURN lake_internal._cert_identity(
        h.serial, h.why, p_scope, NULL,
        'Connect over TLS with a valid service certificate of the lake (sslcert, sslkey); '
        '`lake certs list` shows them.');
END
$$;
ALTER FUNCTION lake.authenticate_cert(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.authenticate_cert(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.authenticate_cert(text) TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.authenticate_cert(text) IS
    'Establish the session''s identity (a service) from its TLS client certificate; returns the '
    'service, or NULL when refused. Audited.';
