-- pgbouncer's auth_query: the SCRAM secret of a login role of the lake, so that pgbouncer checks
-- the client's SCRAM proof and then logs in to PostgreSQL as that role with the same proof
-- (SCRAM pass-through: pgbouncer never learns a password). Read live from pg_authid, so a new
-- role, a changed password or a dropped role counts at the next connection, unlike a copied
-- auth_file. Only roles that may log in, hold a SCRAM secret, have not passed VALID UNTIL and
-- belong to one of the lake's group roles; never a superuser or a replication role (those keep
-- to the socket). Owned by the superuser that builds the schema (plpython3u needs one): only a
-- superuser may read pg_authid. Callable by lake_pooler alone.
CREATE FUNCTION lake_pooler.user_secret(p_user text)
RETURNS TABLE (usename name, passwd text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.rolname, a.rolpassword
      FROM pg_catalog.pg_authid AS a
     WHERE a.rolname = p_user
       AND a.rolcanlogin
       AND NOT a.rolsuper
       AND NOT a.rolreplication
       AND NOT a.rolbypassrls
       AND a.rolpassword LIKE 'SCRAM-SHA-256$%'
       AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > now())
       AND EXISTS (SELECT FROM pg_catalog.pg_roles AS g
                    WHERE g.rolname IN ('lake_read', 'lake_write', 'lake_admin', 'lake_auditor',
                                        'lake_service')
                      AND pg_catalog.pg_has_role(a.oid, g.oid, 'MEMBER'))
$$;
REVOKE ALL ON FUNCTION lake_pooler.user_secret(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_pooler.user_secret(text) TO lake_pooler;

COMMENT ON FUNCTION lake_pooler.user_secret(text) IS
    'pgbouncer''s auth_query: the SCRAM secret of a lake login role (none for superusers).';
