-- A service renews its own certificate with the one it connected with: the identity comes from
-- this connection's TLS handshake (lake_internal._handshake_cert: a valid, unrevoked certificate
-- of lake.service_certs), never from an argument. The new certificate has the same service and
-- scopes, valid 7 days; the old one stays valid until it expires (its open sessions go on).
-- Audited (cert.renew); refused without a valid client certificate (LK017).
CREATE FUNCTION lake.renew_service_cert()
RETURNS TABLE (serial numeric, service text, not_after timestamptz, certificate text,
               private_key text, ca_certificate text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
    c lake.service_certs;
BEGIN
    SELECT * INTO h FROM lake_internal._handshake_cert();
    IF h.why IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK017',
            MESSAGE = format('this connection''s client certificate cannot be renewed: %s', h.why),
            HINT = 'Connect over TLS with the service''s current certificate (sslcert, sslkey); '
                   'an administrator issues a first one with lake.issue_service_cert().';
    END IF;
    SELECT * INTO c FROM lake.service_certs AS s WHERE s.serial = h.serial;
    RETURN QUERY SELECT * FROM lake_internal._issue_service_cert(c.service, c.scopes, c.serial,
                                                                 'cert.renew');
END
$$;
ALTER FUNCTION lake.renew_service_cert() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.renew_service_cert() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.renew_service_cert() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.renew_service_cert() IS
    'A service renews its client certificate with the one this connection presented; audited.';
