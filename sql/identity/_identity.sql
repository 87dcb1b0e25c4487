-- This session's whole identity (lake.active_identity): the lake user, the service acting for
-- that user, the principal that authenticated and with which key, and the scopes; all NULL
-- without one. For the lake's own functions: the ingest paths and the audit log.
CREATE FUNCTION lake_internal._identity(
    OUT user_id text,
    OUT service text,
    OUT principal text,
    OUT key_id text,
    OUT scopes text[]
)
LANGUAGE plpgsql
STABLE
PARALLEL RESTRICTED  -- pg_backend_pid() differs in a parallel worker
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT a.user_id, a.service, a.principal, a.key_id, a.scopes
      INTO user_id, service, principal, key_id, scopes
      FROM lake.active_identity AS a;
END
$$;
ALTER FUNCTION lake_internal._identity() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._identity() FROM PUBLIC;
