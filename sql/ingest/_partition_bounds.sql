-- The range of a RANGE partition on a timestamptz key, read from its bound: NULL for MINVALUE
-- or MAXVALUE (or a bound that cannot be read). For lake.partitions and the audit log's purge.
CREATE FUNCTION lake_internal._partition_bounds(p_part regclass,
                                       OUT range_from timestamptz, OUT range_to timestamptz)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN m[1] = 'MINVALUE' THEN NULL ELSE trim(both '''' from m[1])::timestamptz END,
           CASE WHEN m[2] = 'MAXVALUE' THEN NULL ELSE trim(both '''' from m[2])::timestamptz END
      FROM pg_class AS c,
           regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \((.*)\) TO \((.*)\)') AS m
     WHERE c.oid = p_part
$$;
ALTER FUNCTION lake_internal._partition_bounds(regclass) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._partition_bounds(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._partition_bounds(regclass) TO lake_admin;
