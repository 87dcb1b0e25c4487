-- What waits for the sealer (lake.seal()): per log ('audit', 'changes'), how many committed rows
-- and how long since the oldest of them was made (0 when none). The sealer's delay, for the
-- metrics (lake serve's /metrics): without a bridge it stays under about a minute (the seal job).
CREATE FUNCTION lake.seal_backlog()
RETURNS TABLE (log text, pending bigint, oldest_age_s double precision)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'audit', count(*),
           coalesce(extract(epoch FROM now() - min(a.occurred_at)), 0)::double precision
      FROM lake.audit_pending AS a
    UNION ALL
    SELECT 'changes', count(*),
           coalesce(extract(epoch FROM now()) - min((c.source ->> 'ts_ms')::bigint) / 1000.0,
                    0)::double precision
      FROM lake_internal.change_pending AS c;
END
$$;
ALTER FUNCTION lake.seal_backlog() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.seal_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.seal_backlog() TO lake_admin, lake_auditor;

COMMENT ON FUNCTION lake.seal_backlog() IS
    'Committed audit entries and changes waiting for the sealer: how many, the oldest''s age.';
