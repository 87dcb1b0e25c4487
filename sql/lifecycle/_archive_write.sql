-- Write an archive of partition user_data_partitions.<p_partition> (plpython/lake_archive): one
-- line of JSON a row, all columns (row_to_json: times in UTC, bytea in hex, doc as stored), in
-- table order, gzip-compressed, and its manifest, under
-- <p_root>/<dataset>/<YYYY-MM>/<dataset>_<YYYY-MM>_<p_stamp>.jsonl.gz. Returns the manifest
-- (row_count and sha256 of the uncompressed content, as streamed from the table) with the two
-- paths. The caller holds a lock that keeps the partition unchanged.
CREATE FUNCTION lake_internal._archive_write(p_partition text, p_dataset text, p_month timestamptz,
                                    p_root text, p_stamp text, p_columns jsonb)
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
from lake_archive import archive_paths, describe, partition_lines, write_archive

month = p_month[:7]
data_path, manifest_path = archive_paths(p_root, p_dataset, month, p_stamp)
manifest = write_archive(data_path, manifest_path, partition_lines(plpy, p_partition),
                         describe(p_dataset, p_partition, month, json.loads(p_columns)))
manifest["path"] = data_path
manifest["manifest_path"] = manifest_path
return json.dumps(manifest)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_write(text, text, timestamptz, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_write(text, text, timestamptz, text, text, jsonb)
    TO lake_owner;
