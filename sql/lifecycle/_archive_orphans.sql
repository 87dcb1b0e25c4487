-- Archives (data file and manifest) under p_root that no archive in p_known names, written for
-- this database (their manifest says so) and last written before p_before (plpython/lake_archive):
-- what a rolled-back batch leaves after lake_internal._archive_records wrote a month's archive it
-- never registered. lake.purge_archives deletes them.
CREATE FUNCTION lake_internal._archive_orphans(p_root text, p_known text[], p_before timestamptz)
RETURNS SETOF text
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import datetime
import os
from lake_archive import orphans

if not os.path.isdir(p_root):
    return []
before = datetime.datetime.fromisoformat(p_before).timestamp()
database = plpy.execute("SELECT current_database() AS d")[0]["d"]
return orphans(p_root, p_known or (), before, database)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_orphans(text, text[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_orphans(text, text[], timestamptz) TO lake_owner;
