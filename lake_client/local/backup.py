"""Backups of the embedded cluster with Debian's pgBackRest: WAL archiving, full, differential
and incremental backups into an encrypted repository, and point-in-time restore onto a fresh
data directory.

Layout (``LAKE_HOME``)::

    pgbackrest/pgbackrest.conf   written by the lake at the first ``lake backup`` (and refreshed
                                 by every ``lake backup``): the repository, its cipher passphrase,
                                 the data directory; 0600, owned by the server's OS user
    pgbackrest/log, lock         pgBackRest's own logs and locks
    backup/                      the repository (``LAKE_BACKUP_DIR`` puts it elsewhere: another
                                 disk or a mount, since a backup on the data's disk does not
                                 survive the disk's loss)
    secrets/backup.passphrase    the repository's cipher passphrase (0600): keep a copy elsewhere,
                                 a repository cannot be read without it

WAL archiving is always on in lake.conf (:func:`conf_settings`), but the archive command does
nothing until the configuration file exists: before the first backup there is nothing that
archived WAL could be replayed onto, and a failing archive command would pile WAL up in pg_wal.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from lake_client.config import Settings
from lake_client.errors import ClusterError
from lake_client.local.processes import (
    Paths,
    Say,
    ServerUser,
    mkdir,
    process_alive,
    run,
    secret,
    server_user,
    tail_file,
    write_private,
)

STANZA = "lake"
BACKUP_TYPES = ("full", "diff", "incr")
DEFAULT_RETENTION_FULL = 2  # lake.settings backup_retention_full overrides it at each backup
BACKUP_TIMEOUT = 6 * 3600  # seconds: a backup or a restore of a big lake takes long
RECOVERY_TIMEOUT = 6 * 3600
SETUP_HINT = "install pgBackRest: `sudo docker/setup-debian.sh` (Debian's pgbackrest package)"


@dataclass(frozen=True)
class BackupFiles:
    """Where the lake keeps its backups and pgBackRest's configuration."""

    home: Path

    @property
    def folder(self) -> Path:
        return self.home / "pgbackrest"

    @property
    def conf(self) -> Path:
        return self.folder / "pgbackrest.conf"

    @property
    def repo(self) -> Path:
        override = os.environ.get("LAKE_BACKUP_DIR")
        return Path(override) if override else self.home / "backup"

    @property
    def passphrase(self) -> Path:
        return self.home / "secrets" / "backup.passphrase"


def _pgbackrest_argv(files: BackupFiles) -> list[str]:
    return ["pgbackrest", f"--config={files.conf}", f"--stanza={STANZA}"]


def conf_settings(paths: Paths) -> list[tuple[str, str]]:
    """lake.conf's lines for WAL archiving (``lake up`` appends them to the lake's settings).

    The archive command pushes a segment only once ``lake backup`` has written pgBackRest's
    configuration; ``archive_timeout`` bounds what a lost disk can take with it to 5 minutes of
    commits (a segment is switched only when something was written)."""
    files = BackupFiles(paths.home)
    conf = shlex.quote(str(files.conf))
    push = " ".join(shlex.quote(a) for a in _pgbackrest_argv(files))
    command = f"test ! -f {conf} || {push} archive-push %p"
    return [
        ("archive_mode", "on"),
        ("archive_command", "'" + command.replace("\\", "\\\\").replace("'", "''") + "'"),
        ("archive_timeout", "'5min'"),
        # where the backups job (sql/jobs/_job_backups.sql) finds pgBackRest's configuration
        ("lake.backup_config", "'" + str(files.conf).replace("'", "''") + "'"),
    ]


def _conf_text(s: Settings, paths: Paths, files: BackupFiles, passphrase: str) -> str:
    return "\n".join(
        [
            "# Written by lake_client.local.backup at every `lake backup`: edits here are lost.",
            "[global]",
            f"repo1-path={files.repo}",
            "repo1-cipher-type=aes-256-cbc",
            f"repo1-cipher-pass={passphrase}",
            f"repo1-retention-full={DEFAULT_RETENTION_FULL}",
            "compress-type=zst",
            "compress-level=3",
            "process-max=2",
            "start-fast=y",
            "log-level-console=warn",
            "log-level-file=info",
            f"log-path={files.folder / 'log'}",
            f"lock-path={files.folder / 'lock'}",
            "",
            f"[{STANZA}]",
            f"pg1-path={paths.pg_data}",
            f"pg1-port={s.pg_port}",
            f"pg1-socket-path={paths.run}",
            "pg1-user=postgres",
            "",
        ]
    )


def configure(s: Settings) -> BackupFiles:
    """Write pgBackRest's configuration (and the passphrase on first use); idempotent."""
    if not s.embedded:
        raise ClusterError(
            "backups are made of the embedded cluster only",
            hint="back an external server up with its own tools (e.g. pgBackRest on its host)",
        )
    paths = Paths(s.home)
    user = server_user(paths)
    files = BackupFiles(s.home)
    passphrase = secret(files.passphrase)
    mkdir(files.folder, 0o700, user)
    mkdir(files.folder / "log", 0o700, user)
    mkdir(files.folder / "lock", 0o700, user)
    mkdir(files.repo, 0o700, user)
    write_private(files.conf, _conf_text(s, paths, files, passphrase), user)
    return files


def _pgbackrest(
    s: Settings, args: list[str], *, what: str, timeout: float = BACKUP_TIMEOUT, check: bool = True
) -> str:
    files = BackupFiles(s.home)
    user = server_user(Paths(s.home))
    result = run(
        [*_pgbackrest_argv(files), *args],
        what=what,
        timeout=timeout,
        user=user,
        cwd=files.folder,
        check=check,
    )
    return result.stdout


def _connect(s: Settings, port: int | None = None) -> psycopg.Connection[tuple[Any, ...]]:
    dsn = replace(s, pg_port=port).dsn("postgres") if port is not None else s.dsn("postgres")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def _check_archiving(s: Settings) -> None:
    try:
        with _connect(s) as conn:
            row = conn.execute("SELECT current_setting('archive_mode')").fetchone()
    except psycopg.OperationalError as exc:
        raise ClusterError(
            f"the embedded PostgreSQL does not answer: {exc}", hint="start it: `lake up`"
        ) from exc
    if row is None or row[0] != "on":
        raise ClusterError(
            "the running server does not archive WAL yet (archive_mode takes effect at a start)",
            hint="restart it once: `lake down && lake up`",
        )


def retention_full(s: Settings) -> int:
    """lake.settings backup_retention_full, or the default before the migrations."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(s.dsn(), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT value FROM lake.settings WHERE key = 'backup_retention_full'"
        ).fetchone()
        if row is not None:
            return int(row[0])
    return DEFAULT_RETENTION_FULL


def backup(s: Settings, kind: str = "incr") -> dict[str, Any]:
    """Take a backup (``full``, ``diff`` or ``incr``; pgBackRest makes the first one full) and
    expire those past the retention; returns the new backup as :func:`backups` lists it."""
    if kind not in BACKUP_TYPES:
        raise ClusterError(f"unknown backup type {kind!r}", hint="full, diff or incr")
    configure(s)
    _check_archiving(s)
    _pgbackrest(s, ["stanza-create"], what="pgbackrest stanza-create", timeout=300)
    _pgbackrest(
        s,
        [f"--type={kind}", f"--repo1-retention-full={retention_full(s)}", "backup"],
        what=f"pgbackrest backup --type={kind}",
    )
    found = backups(s)
    if not found:
        raise ClusterError("pgbackrest reported success but lists no backup")
    return found[-1]


def backups(s: Settings) -> list[dict[str, Any]]:
    """The backups in the repository, oldest first: label, type, start and stop time (UTC),
    database size, bytes stored in the repository, the WAL range; [] before the first."""
    files = BackupFiles(s.home)
    if not files.conf.exists():
        return []
    out = _pgbackrest(s, ["--output=json", "info"], what="pgbackrest info", timeout=120)
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"pgbackrest info printed no JSON: {out[:200]}") from exc
    found: list[dict[str, Any]] = []
    for stanza in doc:
        for b in stanza.get("backup", []):
            ts, info = b.get("timestamp", {}), b.get("info", {})
            found.append(
                {
                    "label": b.get("label"),
                    "type": b.get("type"),
                    "started_at": datetime.fromtimestamp(ts.get("start", 0), UTC).isoformat(),
                    "stopped_at": datetime.fromtimestamp(ts.get("stop", 0), UTC).isoformat(),
                    "seconds": ts.get("stop", 0) - ts.get("start", 0),
                    "database_bytes": info.get("size"),
                    "backup_bytes": info.get("delta"),
                    "repository_bytes": info.get("repository", {}).get("delta"),
                    "wal_start": b.get("archive", {}).get("start"),
                    "wal_stop": b.get("archive", {}).get("stop"),
                    "error": b.get("error", False),
                }
            )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _target_pid(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_alive(pid, ("postgres", "postmaster")) else None


def restore(
    s: Settings, to: datetime, target_dir: Path | None = None, say: Say | None = None
) -> dict[str, Any]:
    """Restore the lake as it was at ``to`` into ``target_dir`` (default: the lake's data
    directory, which must then be absent or empty: move the old one away first), replay the
    archived WAL up to that moment and promote: the result is a stopped cluster on a new timeline
    that ``lake up`` starts once it sits at LAKE_HOME/pg."""
    from lake_client.local import postgres  # postgres imports this module for lake.conf

    if to.tzinfo is None:
        raise ClusterError("the restore time needs a time zone", hint="e.g. 2026-12-08T10:15:00Z")
    paths = Paths(s.home)
    files = BackupFiles(s.home)
    target = (target_dir or paths.pg_data).absolute()
    live = postgres.postmaster(paths)
    if target == paths.pg_data.absolute() and live is not None:
        raise ClusterError(
            f"{target} is the running lake's data directory",
            hint="restore into a fresh directory with --target-dir, then switch over: "
            "`lake down`, move pg away, move the restored directory to LAKE_HOME/pg, `lake up`",
        )
    if target.exists() and any(target.iterdir()):
        raise ClusterError(
            f"{target} is not empty", hint="restore into a fresh (absent or empty) directory"
        )
    if not files.conf.exists() and files.passphrase.exists():
        configure(s)  # a new LAKE_HOME with the old passphrase and LAKE_BACKUP_DIR
    if not files.conf.exists():
        raise ClusterError(
            f"no backup configuration in {files.folder}",
            hint="`lake backup` makes the first backup; to restore on a new machine, put the "
            "passphrase in secrets/backup.passphrase and set LAKE_BACKUP_DIR to the repository",
        )
    user = server_user(paths)
    if live is not None:
        # Recovery stops at the first commit after the target, and fails if the archive holds
        # none: commit one now (an empty transaction with an xid), then have everything up to it
        # archived (pgbackrest check switches the WAL segment and waits until it is archived).
        with _connect(s) as conn:
            conn.execute("SELECT pg_current_xact_id()")
            row = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
        _pgbackrest(s, ["check"], what="pgbackrest check", timeout=600)
        # The running lake's history, not the newest timeline in the archive: an earlier restore
        # that was never switched to has left a later timeline there.
        history = [f"--target-timeline={row[0]}"] if row is not None else []
    else:
        history = []
    # pgBackRest would pick the backup itself, but compares whole seconds and strictly: a
    # target in the second a backup finished would find none. Its stop second is truncated, so a
    # backup that stopped in the target's second or before is the one to start from.
    done = [
        b
        for b in backups(s)
        if not b["error"] and datetime.fromisoformat(b["stopped_at"]).timestamp() <= to.timestamp()
    ]
    if not done:
        raise ClusterError(
            f"no backup had finished by {to.isoformat()}",
            hint="`lake backup list` shows the backups and when they finished",
        )
    mkdir(target, 0o700, user)
    when = to.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    started = time.monotonic()
    _pgbackrest(
        s,
        [
            f"--pg1-path={target}",
            f"--set={done[-1]['label']}",
            "--type=time",
            f"--target={when}",
            "--target-action=promote",
            *history,
            "restore",
        ],
        what="pgbackrest restore",
    )
    restored_seconds = time.monotonic() - started
    port = s.pg_port if live is None else _free_port()
    # The restored lake.conf names the old home's sockets and port: write this home's.
    write_private(target / "lake.conf", postgres._lake_conf(replace(s, pg_port=port), paths), user)
    timeline = _recover(s, target, port, user, say)
    return {
        "target_dir": str(target),
        "to": to.astimezone(UTC).isoformat(),
        "timeline": timeline,
        "restore_seconds": round(restored_seconds, 3),
        "recovery_seconds": round(time.monotonic() - started - restored_seconds, 3),
    }


def _recover(s: Settings, target: Path, port: int, user: ServerUser, say: Say | None) -> int:
    """Start the restored cluster on ``port``, wait until it has replayed up to the target and
    promoted itself, and stop it. Returns its new timeline."""
    from lake_client.local import postgres

    paths = Paths(s.home)
    bindir = postgres.pg_bindir(paths)
    log = paths.log / "restore.log"
    if say is not None:
        say(f"replaying WAL in {target} (port {port}; log in {log})…")
    pg_ctl = str(bindir / "pg_ctl")
    run(
        [pg_ctl, "start", "-D", str(target), "-s", "-W", "-l", str(log)],
        what="pg_ctl start (recovery)",
        timeout=120,
        user=user,
        cwd=paths.home,
    )
    started = time.monotonic()
    try:
        while True:
            if time.monotonic() - started > RECOVERY_TIMEOUT:
                raise ClusterError(f"the recovery did not finish within {RECOVERY_TIMEOUT} s")
            with contextlib.suppress(psycopg.OperationalError), _connect(s, port) as conn:
                row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
                if row is not None and row[0]:
                    conn.execute("CHECKPOINT")  # the new timeline into pg_control
                    got = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
                    return int(got[0]) if got else 0
            # a grace period: the postmaster writes its pid file a moment after pg_ctl returns
            if _target_pid(target) is None and time.monotonic() - started > 5:
                json_log = postgres._newest(paths.log, "postgresql-*.json")
                raise ClusterError(
                    "the restored server stopped during recovery:\n"
                    + (tail_file(json_log, 5) if json_log else tail_file(log)),
                    hint="a target after the last archived commit cannot be reached; "
                    "`lake backup list` shows the backups' times",
                )
            time.sleep(0.5)
    finally:
        if _target_pid(target) is not None:
            run(
                [pg_ctl, "stop", "-D", str(target), "-s", "-w", "-m", "fast", "-t", "120"],
                what="pg_ctl stop (after recovery)",
                timeout=180,
                user=user,
                cwd=paths.home,
                check=False,
            )


def last_success(s: Settings) -> dict[str, Any] | None:
    """The newest backup, or None (for `lake status` and the metrics); never raises."""
    try:
        found = backups(s)
    except ClusterError:
        return None
    good = [b for b in found if not b["error"]]
    return good[-1] if good else None
