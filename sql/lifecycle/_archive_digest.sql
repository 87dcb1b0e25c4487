-- Read an archive back (plpython/lake_archive): rows and SHA-256 of its uncompressed content
-- (file_rows, file_sha256), or file_error when it is missing or damaged; with p_partition, the
-- same digest of what that partition holds now, serialised as lake_internal._archive_write does
-- (table_rows, table_sha256). Equal digests prove that the file holds exactly the partition.
CREATE FUNCTION lake_internal._archive_digest(p_path text, p_partition text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
SET TimeZone = 'UTC'
SET bytea_output = 'hex'
SET synchronize_seqscans = off
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_archive import digest_file, digest_lines, partition_lines

out = {}
try:
    d = digest_file(p_path)
    out.update(file_rows=d.rows, file_sha256=d.sha256)
except (OSError, EOFError, ValueError) as e:
    out["file_error"] = "%s: %s" % (type(e).__name__, e)
if p_partition is not None:
    t = digest_lines(partition_lines(plpy, p_partition))
    out.update(table_rows=t.rows, table_sha256=t.sha256)
return json.dumps(out)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_digest(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_digest(text, text) TO lake_owner;
