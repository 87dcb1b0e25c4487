-- Write a month's archive that holds the lines of an existing archive of that month (p_old_path,
-- NULL when there is none) followed by p_lines (plpython/lake_archive), as a new file under
-- <p_root>/<dataset>/<YYYY-MM>/<dataset>_<YYYY-MM>_<p_stamp>.jsonl.gz with its manifest, in the
-- format lake_internal._archive_write writes. The old file is left as it is: the caller registers
-- the new one in lake.archives in its transaction, so a rollback leaves the old archive standing
-- and the new file an orphan (lake.purge_archives deletes it). Returns the manifest (row_count
-- and sha256 of the uncompressed content as written) with the two paths.
CREATE FUNCTION lake_internal._archive_append(p_old_path text, p_lines text[], p_dataset text,
                                              p_partition text, p_month timestamptz,
                                              p_root text, p_stamp text, p_columns jsonb)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
SET TimeZone = 'UTC'
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import itertools
import json
from lake_archive import archive_paths, describe, read_lines, write_archive

month = p_month[:7]
data_path, manifest_path = archive_paths(p_root, p_dataset, month, p_stamp)
old = read_lines(p_old_path) if p_old_path else ()
manifest = write_archive(data_path, manifest_path, itertools.chain(old, p_lines or ()), {
    # Whose file it is, for the purge of orphans (lake_internal._archive_orphans).
    "database": plpy.execute("SELECT current_database() AS d")[0]["d"],
    **describe(p_dataset, p_partition, month, json.loads(p_columns)),
})
manifest["path"] = data_path
manifest["manifest_path"] = manifest_path
return json.dumps(manifest)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_append(text, text[], text, text, timestamptz, text,
                                                     text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_append(text, text[], text, text, timestamptz,
                                                        text, text, jsonb) TO lake_owner;
