-- Issue a client certificate for an enabled service (lake_internal._sign_service_cert), record
-- it in lake.service_certs and audit it (p_action: cert.issue or cert.renew). Its key is returned
-- once and never stored.
CREATE FUNCTION lake_internal._issue_service_cert(p_service text, p_scopes text[],
                                                  p_renewed_from numeric, p_action text)
RETURNS TABLE (serial numeric, service text, not_after timestamptz, certificate text,
               private_key text, ca_certificate text)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_signed jsonb;
    c        lake.service_certs;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.users AS u
                    WHERE u.id = p_service AND u.kind = 'service' AND u.disabled_at IS NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('%L is not an enabled lake service', left(p_service, 100)),
            HINT = 'An administrator registers it with lake.create_user(id, name, ''service'').';
    END IF;
    IF p_scopes IS NULL OR cardinality(p_scopes) = 0 OR NOT p_scopes <@ ARRAY['read', 'write'] THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('invalid scopes %L', p_scopes),
            HINT = 'Scopes are read and/or write.';
    END IF;
    v_signed := lake_internal._sign_service_cert(p_service);
    INSERT INTO lake.service_certs AS s
           (serial, service, issuer, fingerprint, scopes, not_before, not_after, renewed_from)
    VALUES ((v_signed->>'serial')::numeric, p_service, v_signed->>'issuer',
            v_signed->>'fingerprint', p_scopes, (v_signed->>'not_before')::timestamptz,
            (v_signed->>'not_after')::timestamptz, p_renewed_from)
    RETURNING * INTO c;
    PERFORM lake_internal._audit(p_action, c.serial::text,
                        jsonb_build_object('service', c.service, 'scopes', to_jsonb(c.scopes),
                                           'not_after', c.not_after,
                                           'fingerprint', c.fingerprint,
                                           'renewed_from', c.renewed_from::text));
    RETURN QUERY SELECT c.serial, c.service, c.not_after, v_signed->>'certificate',
                        v_signed->>'private_key', v_signed->>'ca_certificate';
END
$$;
ALTER FUNCTION lake_internal._issue_service_cert(text, text[], numeric, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._issue_service_cert(text, text[], numeric, text) FROM PUBLIC;
