-- The source formats a dataset may declare (lake.create_dataset option source_format); the
-- client reads them to know how to read a dataset's files. A function rather than a view: it
-- runs as its owner, who may call the lake's PL/Python (lake_internal._source_formats), which
-- applications may not.
CREATE FUNCTION lake.source_formats()
RETURNS TABLE (name text, description text, reader text, member_pattern text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.name, f.description, f.reader, f.member_pattern
      FROM lake_internal._source_formats() AS f
     ORDER BY f.name
$$;
ALTER FUNCTION lake.source_formats() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.source_formats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.source_formats() TO lake_admin, lake_read, lake_write;

COMMENT ON FUNCTION lake.source_formats() IS
    'Source formats a dataset may declare: name, description, how the client reads a file '
    '(json, jsonl, items:<key>, xml:<tag>), the zip member paths of the format.';
