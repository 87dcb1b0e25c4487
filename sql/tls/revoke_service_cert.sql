-- Revoke a service's client certificate (its serial, in decimal) or every certificate of a
-- service (its id): they stop authenticating at once, and sessions they authenticated lose their
-- identity (and whom they acted for) with their next statement, as revoked API keys do. Returns
-- how many were revoked now (revoking a revoked one changes nothing). Administrators only;
-- audited (cert.revoke).
CREATE FUNCTION lake.revoke_service_cert(which text)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_which ALIAS FOR which;
    v_by_serial boolean := p_which ~ '^[0-9]{1,60}$';
    c   lake.service_certs;
    v_n integer := 0;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.service_certs AS s
                    WHERE CASE WHEN v_by_serial THEN s.serial = p_which::numeric
                               ELSE s.service = p_which END) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK012',
            MESSAGE = format('no service certificate %L', left(p_which, 100)),
            HINT = 'Name a serial or a service: SELECT serial, service FROM lake.service_certs.';
    END IF;
    FOR c IN UPDATE lake.service_certs AS s SET revoked_at = now()
              WHERE CASE WHEN v_by_serial THEN s.serial = p_which::numeric
                         ELSE s.service = p_which END
                AND s.revoked_at IS NULL
             RETURNING * LOOP
        DELETE FROM lake_internal.session_identity AS i WHERE i.key_id = 'cert:' || c.serial;
        PERFORM lake_internal._audit('cert.revoke', c.serial::text,
                                     jsonb_build_object('service', c.service));
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake.revoke_service_cert(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.revoke_service_cert(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.revoke_service_cert(text) TO lake_admin;

COMMENT ON FUNCTION lake.revoke_service_cert(text) IS
    'Revoke a service certificate (serial) or all of a service''s; their sessions lose their '
    'identity. Administrators; audited.';
