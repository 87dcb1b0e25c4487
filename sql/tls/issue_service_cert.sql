-- A service's first client certificate (mTLS), valid 7 days, signed by the lake's CA: the
-- certificate, its private key (shown once, never stored) and the CA's certificate. With it the
-- service connects over TLS and calls lake.authenticate_cert(); it renews its own with
-- lake.renew_service_cert(). Administrators only; audited (cert.issue).
CREATE FUNCTION lake.issue_service_cert(service text, scopes text[] DEFAULT ARRAY['read', 'write'])
RETURNS TABLE (serial numeric, not_after timestamptz, certificate text, private_key text,
               ca_certificate text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_service ALIAS FOR service;
    p_scopes ALIAS FOR scopes;
BEGIN
    RETURN QUERY SELECT i.serial, i.not_after, i.certificate, i.private_key, i.ca_certificate
                   FROM lake_internal._issue_service_cert(p_service, p_scopes, NULL,
                                                          'cert.issue') AS i;
END
$$;
ALTER FUNCTION lake.issue_service_cert(text, text[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.issue_service_cert(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.issue_service_cert(text, text[]) TO lake_admin;

COMMENT ON FUNCTION lake.issue_service_cert(text, text[]) IS
    'Issue a service''s client certificate (7 days) and key, signed by the lake''s CA. '
    'Administrators; audited.';
