-- Establish the identity, for this transaction (the default) or the session, of the service whose
-- client certificate a door of the lake verified in its own caller's TLS handshake (`lake grpc
-- --client-ca`): PostgreSQL never sees that handshake, so the door passes the certificate's
-- serial and issuer (in sslinfo's ssl_issuer_dn() form, as lake.service_certs stores it). The
-- same checks as lake.authenticate_cert (lake_internal._service_cert_refusal): known, not
-- revoked, not expired, service enabled; the same identity (key_id cert:<serial>), which may then
-- lake.act_as() users; audited with the door's login.
--
-- Only members of lake_door may call it: it trusts its caller to have verified the handshake, so
-- in an application's hands it would let it claim any service's certificate.
CREATE FUNCTION lake.authenticate_peer_cert(serial numeric, issuer text,
                                            scope text DEFAULT 'transaction')
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_serial ALIAS FOR serial;
    p_issuer ALIAS FOR issuer;
    p_scope ALIAS FOR scope;
BEGIN
    RETURN lake_internal._cert_identity(
        p_serial, lake_internal._service_cert_refusal(p_serial, p_issuer), p_scope, session_user,
        'Present a valid service certificate of the lake; `lake certs list` shows them.');
END
$$;
ALTER FUNCTION lake.authenticate_peer_cert(numeric, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.authenticate_peer_cert(numeric, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.authenticate_peer_cert(numeric, text, text) TO lake_door;

COMMENT ON FUNCTION lake.authenticate_peer_cert(numeric, text, text) IS
    'For a door (lake_door) that verified its caller''s TLS client certificate: establish that '
    'service''s identity from the certificate''s serial and issuer; NULL when refused. Audited.';
