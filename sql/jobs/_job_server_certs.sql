-- Job server_certs (daily): renew the servers' certificates of LAKE_HOME/tls that have a third
-- of their 30 days left at p_now (lake_internal._renew_server_certs), then make PostgreSQL load
-- its new one (pg_reload_conf(): open connections keep the session they negotiated, new ones get
-- the new certificate); Redis, `lake serve` and the gRPC server pick their new files up
-- themselves. Each renewal is audited (cert.server_renew). lake.run_maintenance('server_certs',
-- now() + interval '25 days') renews ahead of time.
CREATE FUNCTION lake_internal._job_server_certs(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_renewed jsonb := lake_internal._renew_server_certs(p_now, false);
    v_cert    jsonb;
BEGIN
    FOR v_cert IN SELECT * FROM jsonb_array_elements(v_renewed) LOOP
        PERFORM lake_internal._audit('cert.server_renew', v_cert->>'name', v_cert);
    END LOOP;
    IF jsonb_array_length(v_renewed) > 0 THEN
        PERFORM pg_reload_conf();
    END IF;
    RETURN jsonb_build_object('renewed', v_renewed);
END
$$;
ALTER FUNCTION lake_internal._job_server_certs(timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_server_certs(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_server_certs(timestamptz) TO lake_admin;
-- The job reloads the configuration so that PostgreSQL takes its renewed certificate.
GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO lake_owner;
