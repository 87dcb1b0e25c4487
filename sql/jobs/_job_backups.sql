-- Job backups (hourly): a pgBackRest backup of the whole cluster when one is due: full when the
-- newest full backup is backup_full_every old (7 days) or there is none, else incremental when
-- the newest backup is backup_incr_every old (1 day); pgBackRest then expires what
-- backup_retention_full (2 full backups and what depends on them) does not keep. The server has
-- WAL archived all along (lake.conf), so these backups restore to any moment since the oldest.
-- Nothing happens in a database where pg_cron does not schedule it (the backup is the
-- cluster's, taken once, from the lake's own database), nor before `lake backup` wrote
-- pgBackRest's configuration (lake.backup_config in lake.conf names it). pgBackRest runs as a child of this session, as the server's OS user: the job's
-- transaction stays open while it copies (minutes), holding back vacuum meanwhile, and an error
-- of pgBackRest fails the run with its message.
CREATE FUNCTION lake_internal._job_backups(p_now timestamptz)
RETURNS jsonb
LANGUAGE plpython3u
VOLATILE
AS $$
import json
import os
import subprocess

facts = plpy.execute(
    "SELECT coalesce(current_setting('lake.backup_config', true), '') AS conf,"
    " EXISTS (SELECT FROM lake_internal._cron_jobs() AS j WHERE j.job = 'backups') AS cron_db"
)[0]
conf = facts["conf"]
if not facts["cron_db"]:
    return json.dumps({"skipped": "pg_cron does not schedule the lake's jobs in this database"})
if not conf or not os.path.exists(conf):
    return json.dumps({"skipped": "no backup configuration yet (`lake backup` makes the first)"})
base = ["pgbackrest", f"--config={conf}", "--stanza=lake"]


def pgbackrest(*args, timeout=120):
    done = subprocess.run(
        [*base, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        plpy.error(f"pgbackrest {args[-1]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


info = json.loads(pgbackrest("--output=json", "info"))
found = [b for s in info for b in s.get("backup", []) if not b.get("error")]
last_full = max((b["timestamp"]["stop"] for b in found if b["type"] == "full"), default=None)
last_any = max((b["timestamp"]["stop"] for b in found), default=None)
plan = plpy.prepare(
    "SELECT CASE WHEN $2 IS NULL"
    "  OR to_timestamp($2) <= $1 - lake_internal._setting('backup_full_every')::interval"
    "  THEN 'full'"
    "  WHEN to_timestamp($3) <= $1 - lake_internal._setting('backup_incr_every')::interval"
    "  THEN 'incr' END AS kind,"
    " lake_internal._setting('backup_retention_full') AS keep",
    ["timestamptz", "float8", "float8"],
)
due = plpy.execute(plan, [p_now, last_full, last_any])[0]
if due["kind"] is None:
    return json.dumps({"backup": None, "backups": len(found)})
pgbackrest(
    f"--type={due['kind']}", f"--repo1-retention-full={due['keep']}", "backup", timeout=6 * 3600
)
info = json.loads(pgbackrest("--output=json", "info"))
newest = [b for s in info for b in s.get("backup", [])][-1]
return json.dumps(
    {
        "backup": newest["label"],
        "type": newest["type"],
        "seconds": newest["timestamp"]["stop"] - newest["timestamp"]["start"],
        "database_bytes": newest["info"]["size"],
        "repository_bytes": newest["info"]["repository"]["delta"],
        "backups": sum(len(s.get("backup", [])) for s in info),
    }
)
$$;
REVOKE ALL ON FUNCTION lake_internal._job_backups(timestamptz) FROM PUBLIC;
-- lake_owner only: lake_internal._job_work (SECURITY DEFINER, lake_owner) calls it for the job.
GRANT EXECUTE ON FUNCTION lake_internal._job_backups(timestamptz) TO lake_owner;
