-- The backups in the lake's pgBackRest repository, oldest first, as `pgbackrest info` lists
-- them: label, type (full, diff, incr), when it started and finished, the database's size then
-- and the bytes it added to the repository (compressed, encrypted). No rows before the first
-- `lake backup`, or on a server whose lake.conf names no configuration (lake.backup_config).
-- For `lake serve`'s metrics (lake_backup_last_success_timestamp_seconds) and administrators.
CREATE FUNCTION lake.backups()
RETURNS TABLE (
    label text,
    type text,
    started_at timestamptz,
    stopped_at timestamptz,
    database_bytes bigint,
    repository_bytes bigint
)
LANGUAGE plpython3u
VOLATILE
AS $$
import json
import os
import subprocess

conf = plpy.execute(
    "SELECT coalesce(current_setting('lake.backup_config', true), '') AS conf"
)[0]["conf"]
if not conf or not os.path.exists(conf):
    return []
done = subprocess.run(
    ["pgbackrest", f"--config={conf}", "--stanza=lake", "--output=json", "info"],
    capture_output=True, text=True, timeout=60, check=False,
)
if done.returncode != 0:
    plpy.error(f"pgbackrest info failed ({done.returncode}): {done.stderr.strip()[-500:]}")
when = plpy.prepare("SELECT to_timestamp($1) AS t", ["float8"])
return [
    (
        b["label"],
        b["type"],
        plpy.execute(when, [b["timestamp"]["start"]])[0]["t"],
        plpy.execute(when, [b["timestamp"]["stop"]])[0]["t"],
        b["info"]["size"],
        b["info"]["repository"]["delta"],
    )
    for stanza in json.loads(done.stdout)
    for b in stanza.get("backup", [])
    if not b.get("error")
]
$$;
REVOKE ALL ON FUNCTION lake.backups() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.backups() TO lake_admin;

COMMENT ON FUNCTION lake.backups() IS
    'The backups in the lake''s pgBackRest repository, oldest first. Administrators.';
