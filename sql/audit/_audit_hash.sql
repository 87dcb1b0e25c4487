-- The hash of an audit entry: SHA-256 of the previous entry's hash followed by the entry's frame
-- (id, times as microseconds since the Unix epoch, so no time zone setting changes them, action,
-- role, service, transaction) and the SHA-256 of its payload as a JSON array (jsonb's text form
-- is canonical). The payload's digest is computed (lake_internal._audit_payload) unless an
-- erasure redacted it, which keeps the digest of the payload as written in `erased`. The one
-- definition used to append (lake_internal._seal_audit) and to verify (lake.verify_audit_chain).
CREATE FUNCTION lake_internal._audit_hash(e lake.audit_log)
RETURNS bytea
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL keeps this plan for the session; a SQL function with SET is planned every call.
    RETURN public.digest(
        e.prev_hash || convert_to(jsonb_build_array(
            e.id, (extract(epoch FROM e.at) * 1000000)::bigint,
            (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.action, e.db_role,
            e.service, e.xact_id::text,
            encode(coalesce(e.erased, lake_internal._audit_payload(e)), 'hex'))::text, 'UTF8'),
        'sha256');
END
$$;
ALTER FUNCTION lake_internal._audit_hash(lake.audit_log) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._audit_hash(lake.audit_log) FROM PUBLIC;
