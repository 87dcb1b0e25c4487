"""Backup and restore throughput (`make bench-ha`, the backup part): pgBackRest against a plain
copy of the same data directory, measured in the same run.

    .venv/bin/python bench/backup.py [--rows 1000000] [--keep]

Starts a private embedded cluster under /tmp on free ports (the lake's own server is not
touched), migrates it, loads --rows validated records into one dataset, and times:

  tar          `tar -cf` of the stopped data directory (without pg_wal) into a file beside it
               and `tar -xf` back into an empty one: the baseline, no compression, no
               encryption
  full backup  `lake backup --type full` (lake_client.local.backup: zstd level 3, AES-256, two
               processes) of the running cluster
  incr backup  `lake backup` after 10 % more rows
  restore      `lake restore --to now` into a fresh directory: the files, then the WAL replayed
               up to the target and the promotion (lake_client.local.backup.restore)

MB/s is the data directory's size without pg_wal (pgBackRest's "database size"; for the
incremental backup, the bytes of the files it copied) over the wall time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from common import free_ports, machine_facts

from lake_client import local, migrate
from lake_client.config import Settings
from lake_client.local import backup
from lake_client.local.processes import Paths, server_user


def _load(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO user_data.bench (user_id, ts, doc)"
            " SELECT 'user' || (i %% 50), t, jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',"
            " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'lat', 52 + random(), 'lon', 13 + random(),"
            " 'note', md5(i::text))"
            " FROM generate_series(1, %s) AS i,"
            " LATERAL (SELECT now() - (i %% 86400) * interval '1 second' AS t) AS x",
            [rows],
        )


def _du(path: Path) -> int:
    """Bytes under path without pg_wal (pgBackRest's database size leaves the WAL out too)."""
    out = subprocess.run(
        ["du", "-sb", "--exclude=pg_wal", str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the private cluster's folder")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="lake-bench-backup-", dir="/tmp"))
    base.chmod(0o755)
    pg_port, redis_port = free_ports(2)
    s = Settings(
        home=base / "home",
        pg_port=pg_port,
        redis_port=redis_port,
        database="lake",
        external_dsn=None,
        external_redis=None,
    )
    try:
        local.up(s, quiet=True)
        migrate.upgrade(s.dsn())
        with psycopg.connect(s.dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT lake.create_dataset('bench', '{\"type\": \"object\"}',"
                " '{\"pii_scan\": false}')"
            )
        _load(s.dsn(), args.rows)
        with psycopg.connect(s.dsn(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        results: list[tuple[str, int, float]] = []

        started = time.monotonic()
        full = backup.backup(s, "full")
        results.append(
            ("full backup (pgBackRest)", int(full["database_bytes"]), time.monotonic() - started)
        )
        stored_full = int(full["repository_bytes"] or 0)

        _load(s.dsn(), args.rows // 10)
        started = time.monotonic()
        incr = backup.backup(s, "incr")
        results.append(
            (
                "incr backup (+10 % rows; changed)",
                int(incr["backup_bytes"]),
                time.monotonic() - started,
            )
        )

        # The baseline: the same data directory, stopped (a consistent plain copy), then tar.
        local.down(s)
        pg = s.home / "pg"
        size = _du(pg)
        tar = base / "pg.tar"
        started = time.monotonic()
        subprocess.run(
            ["tar", "-cf", str(tar), "--exclude=pg/pg_wal/*", "-C", str(s.home), "pg"], check=True
        )
        subprocess.run(["sync", "-f", str(tar)], check=True)
        results.append(("tar -cf (baseline)", size, time.monotonic() - started))
        untar = base / "untar"
        untar.mkdir()
        started = time.monotonic()
        subprocess.run(["tar", "-xf", str(tar), "-C", str(untar)], check=True)
        subprocess.run(["sync", "-f", str(untar)], check=True)
        results.append(("tar -xf (baseline)", size, time.monotonic() - started))
        shutil.rmtree(untar)
        tar.unlink()
        local.up(s, quiet=True)

        started = time.monotonic()
        done = backup.restore(s, datetime.now(UTC), base / "restored")
        results.append(
            (
                "restore --to now (files + WAL)",
                int(incr["database_bytes"]),
                time.monotonic() - started,
            )
        )

        print(f"backup and restore throughput, {args.rows:,} + {args.rows // 10:,} rows")
        for line in machine_facts(s.dsn()):
            print(line)
        print(f"user:    the server runs as {server_user(Paths(s.home)).name}")
        print(f"{'step':34} {'MB':>9} {'seconds':>8} {'MB/s':>8}")
        for name, nbytes, seconds in results:
            print(f"{name:34} {nbytes / 2**20:9.1f} {seconds:8.2f} {nbytes / 2**20 / seconds:8.1f}")
        print(
            f"repository: the full backup stored {stored_full / 2**20:.1f} MB "
            f"(zstd + AES-256); restore: {done['restore_seconds']} s files, "
            f"{done['recovery_seconds']} s replay and promotion"
        )
    finally:
        local.down(s)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
