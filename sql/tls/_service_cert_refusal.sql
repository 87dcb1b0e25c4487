-- Why the certificate of this serial and issuer (sslinfo's ssl_issuer_dn() form) does not
-- identify a service, or NULL when it does: known to lake.service_certs, not revoked, not
-- expired, its service enabled. The one home of these checks, for a certificate that PostgreSQL
-- verified in the session's own handshake (lake_internal._handshake_cert) and for one a door
-- verified in its caller's (lake.authenticate_peer_cert).
CREATE FUNCTION lake_internal._service_cert_refusal(p_serial numeric, p_issuer text)
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c lake.service_certs;
    u lake.users;
BEGIN
    SELECT * INTO c FROM lake.service_certs AS s WHERE s.serial = p_serial AND s.issuer = p_issuer;
    SELECT * INTO u FROM lake.users AS x WHERE x.id = c.service;
    RETURN CASE
        WHEN c.serial IS NULL THEN 'unknown certificate'
        WHEN c.revoked_at IS NOT NULL THEN 'revoked certificate'
        WHEN c.not_after <= now() THEN 'expired certificate'
        WHEN u.disabled_at IS NOT NULL THEN 'disabled service'
    END;
END
$$;
ALTER FUNCTION lake_internal._service_cert_refusal(numeric, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._service_cert_refusal(numeric, text) FROM PUBLIC;
