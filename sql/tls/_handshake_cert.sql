-- The client certificate this connection presented in its TLS handshake (sslinfo: serial and
-- issuer, which PostgreSQL verified against the lake's CA before the session began; nothing a
-- client sends in SQL can change them): its serial, and why it does not identify a service
-- (lake_internal._service_cert_refusal; NULL when it does).
CREATE FUNCTION lake_internal._handshake_cert(OUT serial numeric, OUT why text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT coalesce(public.ssl_client_cert_present(), false) THEN
        why := 'no client certificate';
        RETURN;
    END IF;
    serial := public.ssl_client_serial();
    why := lake_internal._service_cert_refusal(serial, public.ssl_issuer_dn());
END
$$;
ALTER FUNCTION lake_internal._handshake_cert() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._handshake_cert() FROM PUBLIC;
