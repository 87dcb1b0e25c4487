-- The bytes of the regular files under p_root as the filesystem has them (0 when the folder does
-- not exist): the archive's storage_usage_bytes, measured on disk rather than taken from
-- lake.archives, so that orphans and files deleted behind the lake's back show.
CREATE FUNCTION lake_internal._dir_bytes(p_root text)
RETURNS bigint
LANGUAGE plpython3u
VOLATILE
AS $$
import os

total = 0
for folder, _dirs, files in os.walk(p_root):
    for name in files:
        try:
            st = os.lstat(os.path.join(folder, name))
        except OSError:
            continue  # deleted while we walked
        total += st.st_size
return total
$$;
REVOKE ALL ON FUNCTION lake_internal._dir_bytes(text) FROM PUBLIC;
-- lake_owner only: lake.storage_usage() calls it for the archive folder; any path is no one's.
GRANT EXECUTE ON FUNCTION lake_internal._dir_bytes(text) TO lake_owner;
