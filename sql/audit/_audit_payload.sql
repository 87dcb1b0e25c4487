-- The SHA-256 of an audit entry's payload: what it says about whom (object, lake_user,
-- client_addr, application, detail, before, after) as a JSON array (jsonb's text form is
-- canonical). The hash chain covers this digest, not the payload itself, so an erasure can redact
-- the payload of the entries about a person, keep the digest (lake.audit_log.erased), and the
-- chain still verifies (lake_internal._audit_hash).
CREATE FUNCTION lake_internal._audit_payload(e lake.audit_log)
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN public.digest(
        convert_to(jsonb_build_array(
            e.object, e.lake_user, host(e.client_addr), e.application, e.detail, e.before,
            e.after)::text, 'UTF8'),
        'sha256');
END
$$;
ALTER FUNCTION lake_internal._audit_payload(lake.audit_log) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_payload(lake.audit_log) FROM PUBLIC;
