-- The client certificate this connection presented in its TLS handshake (sslinfo: serial and
-- issuer, which PostgreSQL verified against the lake's CA before the session began; nothing a
-- client sends in SQL can change them), looked up in lake.service_certs: its serial, and why it
-- does not identify a service (NULL when it does: known, not revoked, not expired, its service
-- enabled).
CREATE FUNCTION lake_internal._handshake_cert(OUT serial numeric, OUT why text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c lake.service_certs;
    u lake.users;
BEGIN
    IF NOT coalesce(public.ssl_client_cert_present(), false) THEN
        why := 'no client certificate';
        RETURN;
    END IF;
    serial := public.ssl_client_serial();
    SELECT * INTO c FROM lake.service_certs AS s
     WHERE s.serial = _handshake_cert.serial AND s.issuer = public.ssl_issuer_dn();
    SELECT * INTO u FROM lake.users AS x WHERE x.id = c.service;
    why := CASE
        WHEN c.serial IS NULL THEN 'unknown certificate'
        WHEN c.revoked_at IS NOT NULL THEN 'revoked certificate'
        WHEN c.not_after <= now() THEN 'expired certificate'
        WHEN u.disabled_at IS NOT NULL THEN 'disabled service'
    END;
END
$$;
ALTER FUNCTION lake_internal._handshake_cert() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._handshake_cert() FROM PUBLIC;
