-- Write a month's archive again without one person's rows (an erasure, lake.erase_user): the
-- lines of p_old_path but those whose user_id is p_user_id, in order, as a new file under
-- <p_root>/<dataset>/<YYYY-MM>/<dataset>_<YYYY-MM>_<p_stamp>.jsonl.gz with its manifest (the old
-- manifest's description, created_at now, erased: the erasure's id), in the format
-- lake_internal._archive_write writes (plpython/lake_archive). A file without their rows is not
-- written again: {"removed": 0}; nor is any when p_stamp is NULL: {"removed": n} only counts. The old file is left as it is: the caller registers the new one in
-- its transaction and deletes the old one after the commit (lake.finish_erasure), so a rollback
-- leaves the old archive standing and the new file an orphan (lake.purge_archives deletes it).
-- Returns the manifest (row_count and sha256 of the content written) with the two paths and
-- removed (how many rows were left out).
CREATE FUNCTION lake_internal._archive_erase(p_old_path text, p_old_manifest text,
                                             p_user_id text, p_root text, p_stamp text,
                                             p_erasure bigint)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import datetime
import json
from lake_archive import (archive_paths, count_user_lines, lines_without, read_manifest,
                          write_archive)

try:
    removed = count_user_lines(p_old_path, p_user_id)
except (OSError, EOFError, ValueError) as e:
    return json.dumps({"removed": 0, "file_error": "%s: %s" % (type(e).__name__, e)})
if removed == 0 or p_stamp is None:
    return json.dumps({"removed": removed})
old = read_manifest(p_old_manifest)
described = {k: v for k, v in old.items()
             if k not in ("file", "row_count", "sha256", "bytes", "path", "manifest_path")}
described.update(created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 erased=p_erasure,
                 database=plpy.execute("SELECT current_database() AS d")[0]["d"])
data_path, manifest_path = archive_paths(p_root, str(old["dataset"]), str(old["month"]), p_stamp)
manifest = write_archive(data_path, manifest_path, lines_without(p_old_path, p_user_id),
                         described)
manifest["path"] = data_path
manifest["manifest_path"] = manifest_path
manifest["removed"] = removed
return json.dumps(manifest)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_erase(text, text, text, text, text, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_erase(text, text, text, text, text, bigint)
    TO lake_owner;
