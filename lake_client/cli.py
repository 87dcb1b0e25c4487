"""`lake`: the command line of Datapunk Lake.

Every command works against the embedded cluster by default, or against the server named by
LAKE_DSN / the PG* variables.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lake_client import bridge as lake_bridge
from lake_client import local
from lake_client.client import BatchResult, IngestSummary, Lake
from lake_client.config import load_settings
from lake_client.errors import LakeError
from lake_client.records import FORMATS, read_file

app = typer.Typer(
    help="Datapunk Lake: a PostgreSQL-native data lake for personal data.\n\n"
    "Runs against the embedded cluster (`lake up`) unless LAKE_DSN or the PG* variables name "
    "another PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
quarantine_app = typer.Typer(
    help="Review quarantined records.", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(quarantine_app, name="quarantine")
users_app = typer.Typer(
    help="Lake users and services (administrators).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(
    help="API keys: create (shown once), list, rotate, revoke (administrators).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(
    help="The audit log (administrators and auditors).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(audit_app, name="audit")
jobs_app = typer.Typer(
    help="The scheduled jobs that pg_cron runs inside PostgreSQL (administrators).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(jobs_app, name="jobs")

console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"lake (datapunk-lake) {importlib.metadata.version('datapunk-lake')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


def _lake() -> Lake:
    return Lake(application_name="lake-cli")


# -- the embedded cluster ---------------------------------------------------------------------


@app.command()
def up(
    foreground: Annotated[
        bool, typer.Option(help="Stay in the foreground until interrupted (for containers).")
    ] = False,
) -> None:
    """Start the embedded PostgreSQL and Redis (creating them on first use)."""
    status = local.up()
    for line in status.lines():
        console.print(line, highlight=False, soft_wrap=True)
    if foreground:
        local.foreground()


@app.command()
def down() -> None:
    """Stop the embedded PostgreSQL and Redis."""
    local.down()
    console.print("stopped")


@app.command()
def status() -> None:
    """Say what runs, where, and which extensions are available."""
    for line in local.status().lines():
        console.print(line, highlight=False, soft_wrap=True)


@app.command()
def dsn() -> None:
    """Print the libpq connection string of the lake's database."""
    print(load_settings().dsn())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(ctx: typer.Context) -> None:
    """Open psql on the lake's database (extra arguments go to psql)."""
    argv = local.psql_command() + list(ctx.args)
    raise typer.Exit(subprocess.call(argv))


@app.command("migrate")
def migrate_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the lake's database to the latest schema (alembic upgrade)."""
    from lake_client import migrate  # Alembic and SQLAlchemy: a third of every command's start

    dsn_ = load_settings().dsn()
    before = migrate.current_revision(dsn_)
    migrate.upgrade(dsn_, revision)
    after = migrate.current_revision(dsn_)
    console.print(
        f"schema at revision {after}" + ("" if before == after else f" (was {before or 'empty'})")
    )


# -- datasets ---------------------------------------------------------------------------------


@app.command()
def datasets() -> None:
    """List the datasets."""
    with _lake() as lake:
        rows = lake.datasets()
    table = Table("name", "schema", "time field", "retention", "partitions", "compiled")
    for r in rows:
        table.add_row(
            r["name"],
            f"v{r['schema_version']}",
            f"{r['time_field']} ({r['time_format']})",
            r["retention"],
            f"{r['partitions_from']:%Y-%m} .. {r['partitions_to']:%Y-%m}",
            "yes" if r["compiled"] else "no (PL/Python per row)",
        )
    console.print(table)


@app.command("create-dataset")
def create_dataset(
    name: Annotated[str, typer.Argument(help="Dataset name: lower-case letters, digits, _.")],
    schema_file: Annotated[Path, typer.Argument(help="JSON Schema (draft-07) of a record.")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="key=value, e.g. retention='6 months' (repeatable)."),
    ] = None,
) -> None:
    """Create a dataset: its table, partitions, policies and validation."""
    schema = json.loads(schema_file.read_text())
    options: dict[str, Any] = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise LakeError(f"option {item!r} is not key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    with _lake() as lake:
        row = lake.create_dataset(name, schema, **options)
    console.print(
        f"created user_data.{row['name']}: partitions {row['partitions_from']:%Y-%m} .. "
        f"{row['partitions_to']:%Y-%m}, retention {row['retention']}"
    )


@app.command()
def partitions(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
) -> None:
    """List the partitions with their ranges, sizes and tiers."""
    with _lake() as lake:
        rows = lake.partitions(dataset)
    print_partitions(rows)


def print_partitions(rows: list[dict[str, Any]], counts: dict[str, int] | None = None) -> None:
    """The partitions; `counts` (exact rows per partition) replaces the estimates."""
    table = Table(
        "dataset", "partition", "from", "to", "rows" if counts else "rows (est.)", "size", "tier"
    )
    for r in rows:
        n = counts.get(r["partition"], 0) if counts is not None else r["rows_estimate"]
        table.add_row(
            r["dataset"],
            r["partition"],
            "-inf" if r["range_from"] is None else f"{r['range_from']:%Y-%m-%d}",
            "+inf" if r["range_to"] is None else f"{r['range_to']:%Y-%m-%d}",
            "" if n is None else f"{n:,}",
            f"{r['bytes'] / 1024:,.0f} kB",
            r["tier"] or "",
        )
    console.print(table)


@app.command()
def archives(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
) -> None:
    """List the archives of expired months (written by retention, restorable)."""
    with _lake() as lake:
        rows = lake.archives(dataset)
    table = Table("id", "dataset", "month", "rows", "size", "status", "created", "path")
    for r in rows:
        status = r["status"]
        if r["hold_until"] is not None and status == "restored":
            status += f" (held until {r['hold_until']:%Y-%m-%d})"
        table.add_row(
            str(r["id"]),
            r["dataset"],
            r["month"],
            f"{r['rows']:,}",
            f"{r['bytes'] / 1024:,.0f} kB",
            status,
            _when(r["created_at"]),
            r["path"] if r["error"] is None else f"{r['path']}\n{r['error']}",
        )
    console.print(table)


@app.command()
def restore(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    month: Annotated[str, typer.Argument(help="The archived month, YYYY-MM.")],
) -> None:
    """Bring an archived month back into the dataset (administrators)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise typer.BadParameter("the month is written YYYY-MM, e.g. 2025-11", param_hint="MONTH")
    with _lake() as lake:
        row = lake.restore(dataset, month)
    console.print(
        f"restored {row['dataset']} {row['month']}: {row['rows']:,} rows from {row['path']}; "
        f"kept until at least {row['hold_until']:%Y-%m-%d %H:%M} UTC"
    )


# -- ingest -----------------------------------------------------------------------------------


@app.command()
def ingest(
    dataset: Annotated[str, typer.Argument(help="The dataset to load into.")],
    file: Annotated[Path, typer.Argument(help="JSON Lines, a JSON array, or CSV with a header.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)} (default: by suffix)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Lake user who owns the records (administrators)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Records per transaction.")] = 10_000,
    jobs: Annotated[
        int, typer.Option(help="Sessions loading batches side by side (up to the server's cores).")
    ] = 1,
) -> None:
    """Load a file into a dataset: validated in the database, invalid records quarantined.

    Prints accepted and quarantined counts and the most common reasons. A batch that fails on
    the way is retried without being stored twice.
    """
    size = file.stat().st_size if file.exists() else 0
    with _lake() as lake:
        if user:
            lake.act_as(user)
        records = read_file(file, fmt)  # a malformed file fails here, before any write
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[records]:,} records"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        ) as progress:
            task = progress.add_task(f"{file.name} → {dataset}", total=size or None, records=0)

            def on_batch(result: BatchResult, nbytes: int) -> None:
                done = progress.tasks[task].fields["records"] + result.received
                # Bytes of the records plus one separator each: close to the file's bytes.
                progress.update(task, advance=nbytes + result.received, records=done)

            summary = lake.ingest(
                dataset,
                records,
                batch_size=batch_size,
                origin=file.name,
                on_batch=on_batch,
                batch_namespace=_file_namespace(dataset, user, file, batch_size),
                jobs=jobs,
            )
            progress.update(task, completed=size)
    print_summary(summary)


def _file_namespace(dataset: str, user: str | None, file: Path, batch_size: int) -> uuid.UUID:
    """Batch ids derived from the file's content: loading the same file again (say, after a
    crash half-way) skips the batches that were committed instead of storing them twice."""
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"datapunk-lake:{dataset}:{user or ''}:{batch_size}:{digest.hexdigest()}",
    )


def print_summary(summary: IngestSummary) -> None:
    console.print(
        f"[bold]{summary.dataset}[/]: received {summary.received:,}, "
        f"accepted [green]{summary.accepted:,}[/], "
        f"quarantined [yellow]{summary.quarantined:,}[/] "
        f"in {summary.seconds:.1f} s ({summary.records_per_second:,.0f} records/s)"
    )
    duplicates = [b for b in summary.batches if b.duplicate]
    if duplicates:
        console.print(f"{len(duplicates)} batch(es) had been ingested before and were skipped")
    if summary.reasons:
        table = Table("rule", "records", "example", title="why records were quarantined")
        for r in summary.reasons[:10]:
            table.add_row(r.rule, f"{r.records:,}", r.example)
        console.print(table)


# -- checkpoints and rollback -----------------------------------------------------------------


@app.command("checkpoint")
def checkpoint_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    label: Annotated[str, typer.Option(help="What the checkpoint is for.")] = "manual",
) -> None:
    """Record a recovery point of a dataset (kept 24 hours)."""
    with _lake() as lake:
        row = lake.checkpoint(dataset, label)
    console.print(
        f"checkpoint {row['id']} of {dataset} ({row['label']}) at {_when(row['created_at'])}"
    )


@app.command("checkpoints")
def checkpoints_cmd(dataset: Annotated[str, typer.Argument(help="The dataset.")]) -> None:
    """List a dataset's checkpoints, newest first; a rollback may target the last 5."""
    with _lake() as lake:
        rows = lake.checkpoints(dataset)
    table = Table("id", "label", "created", "expires", "by", "rollback")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["label"],
            _when(r["created_at"]),
            _when(r["expires_at"]),
            r["lake_user"] or r["db_role"],
            "yes" if r["can_rollback"] else "no",
        )
    console.print(table)


@app.command("rollback")
def rollback_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    checkpoint_id: Annotated[int, typer.Argument(help="One of its last 5 checkpoints.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Return a dataset to its state at a checkpoint: every change since is undone, for every
    user. The rollback takes a checkpoint first, so it can be undone the same way."""
    if not yes:
        typer.confirm(
            f"Undo every change to {dataset} since checkpoint {checkpoint_id}, for all users?",
            abort=True,
        )
    with _lake() as lake:
        row = lake.rollback(dataset, checkpoint_id)
    console.print(
        f"{dataset} is back at checkpoint {checkpoint_id}: {row['rows_deleted']} rows removed, "
        f"{row['rows_restored']} restored"
        + (
            f", {row['rows_not_restored']} not restored (past retention)"
            if row["rows_not_restored"]
            else ""
        )
        + f"; to undo this: lake rollback {dataset} {row['before_checkpoint']}"
    )


# -- quarantine -------------------------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    status_: Annotated[
        str, typer.Option("--status", help="pending, expired, released, discarded or all.")
    ] = "pending",
    limit: Annotated[int, typer.Option(help="At most this many items.")] = 50,
) -> None:
    """Show quarantined records with their reasons."""
    with _lake() as lake:
        rows = lake.quarantine(dataset, None if status_ == "all" else status_, limit)
    table = Table("id", "dataset", "ref", "user", "status", "reasons", "record")
    for r in rows:
        reasons = "; ".join(f"{x['rule']} at {x['path']}: {x['message']}" for x in r["reasons"])
        record = json.dumps(r["doc"]) if r["doc"] is not None else repr(bytes(r["raw"]))
        table.add_row(
            str(r["id"]),
            r["dataset"],
            r["record_ref"] or "",
            r["user_id"] or "",
            r["status"],
            reasons,
            record[:80],
        )
    console.print(table)


@quarantine_app.command("release")
def quarantine_release(
    item: Annotated[int, typer.Argument(help="Quarantine id.")],
    corrected: Annotated[
        Path | None, typer.Option(help="A file with the corrected record (JSON).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why it may enter.")] = None,
) -> None:
    """Re-validate a quarantined record (or a corrected one) and move it into its dataset."""
    fixed = json.loads(corrected.read_text()) if corrected else None
    with _lake() as lake:
        batch = lake.quarantine_release(item, fixed, note)
    console.print(f"released item {item} as batch {batch['id']}")


@quarantine_app.command("discard")
def quarantine_discard(
    item: Annotated[int, typer.Argument(help="Quarantine id.")],
    reason: Annotated[str, typer.Option(help="Why it will not enter (required).")],
) -> None:
    """Record that a quarantined record will not enter the lake, and why."""
    with _lake() as lake:
        lake.quarantine_discard(item, reason)
    console.print(f"discarded item {item}")


# -- users, keys, audit -----------------------------------------------------------------------


def _when(value: Any) -> str:
    return "" if value is None else str(value)[:19]


@users_app.command("add")
def users_add(
    user_id: Annotated[str, typer.Argument(help="The id: letters, digits and . _ @ : + -")],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    service: Annotated[
        bool, typer.Option("--service", help="A service (gateway) that acts for users.")
    ] = False,
) -> None:
    """Register a lake user, or with --service a gateway that may act for users."""
    with _lake() as lake:
        row = lake.create_user(user_id, name, "service" if service else "user")
    console.print(f"created {row['kind']} {row['id']}; next: `lake keys create {row['id']}`")


@users_app.command("list")
def users_list() -> None:
    """Show users and services with their number of active keys."""
    with _lake() as lake:
        rows = lake.users()
    table = Table("id", "kind", "name", "created", "disabled", "active keys")
    for r in rows:
        table.add_row(
            r["id"],
            r["kind"],
            r["display_name"] or "",
            _when(r["created_at"]),
            _when(r["disabled_at"]),
            str(r["active_keys"]),
        )
    console.print(table)


@users_app.command("disable")
def users_disable(user_id: Annotated[str, typer.Argument(help="User or service id.")]) -> None:
    """Stop a user's or service's keys from authenticating (the data stays)."""
    with _lake() as lake:
        lake.set_user_enabled(user_id, False)
    console.print(f"disabled {user_id}")


@users_app.command("enable")
def users_enable(user_id: Annotated[str, typer.Argument(help="User or service id.")]) -> None:
    """Let a disabled user or service authenticate again."""
    with _lake() as lake:
        lake.set_user_enabled(user_id, True)
    console.print(f"enabled {user_id}")


def _print_new_key(row: dict[str, Any]) -> None:
    console.print(f"key id:  {row['key_id']}")
    console.print(f"scopes:  {', '.join(row['scopes'])}")
    console.print(f"expires: {_when(row['expires_at']) or 'never'}")
    console.print("API key (shown only now; the lake keeps only its hash):")
    print(row["api_key"])


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Argument(help="The user or service the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="read and/or write (repeat the option; both if none).")
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(help="Days until the key expires (never if not given).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Make an API key. It is printed once; store it where the app or service reads it."""
    expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
    with _lake() as lake:
        row = lake.create_key(principal, scope or ("read", "write"), expires, label)
    _print_new_key(row)


@keys_app.command("list")
def keys_list(
    principal: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
) -> None:
    """Show keys (never their secrets): scopes, state, expiry, last use."""
    with _lake() as lake:
        rows = lake.keys(principal)
    table = Table()
    table.add_column("key id", no_wrap=True, min_width=16)  # what rotate and revoke take
    for name in ("for", "scopes", "state", "label", "created", "expires", "last used"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["id"],
            r["principal"],
            ",".join(r["scopes"]),
            r["state"],
            r["label"] or "",
            _when(r["created_at"]),
            _when(r["expires_at"]),
            _when(r["last_used_at"]),
        )
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(key_id: Annotated[str, typer.Argument(help="The key id (16 hex digits).")]) -> None:
    """Replace a key with a new one (same scopes); the old one stops working now."""
    with _lake() as lake:
        row = lake.rotate_key(key_id)
    _print_new_key(row)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (16 hex digits).")]) -> None:
    """Revoke a key: it stops authenticating, and sessions it opened lose their identity."""
    with _lake() as lake:
        lake.revoke_key(key_id)
    console.print(f"revoked {key_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 and name the first bad entry if it is broken."""
    with _lake() as lake:
        row = lake.verify_audit_chain()
    if row["ok"]:
        console.print(f"audit chain intact: {row['entries']:,} entries")
        return
    err_console.print(f"audit chain broken at entry {row['first_bad_id']}: {row['problem']}")
    raise typer.Exit(1)


@audit_app.command("tail")
def audit_tail(
    limit: Annotated[int, typer.Option(help="How many entries.")] = 20,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. auth.failure.")] = None,
) -> None:
    """Show the newest audit entries."""
    with _lake() as lake:
        rows = lake.audit_log(limit, action)
    table = Table("id", "at", "action", "object", "role", "user", "service", "detail")
    for r in reversed(rows):
        table.add_row(
            str(r["id"]),
            _when(r["at"]),
            r["action"],
            r["object"] or "",
            r["db_role"],
            r["lake_user"] or "",
            r["service"] or "",
            json.dumps(r["detail"])[:60],
        )
    console.print(table)


# -- jobs -------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list() -> None:
    """Show every job: schedule, whether pg_cron has it, and how its last run went."""
    with _lake() as lake:
        rows = lake.jobs()
    table = Table("job", "schedule", "in pg_cron", "last run", "status", "failed 24 h", "error")
    for r in rows:
        table.add_row(
            r["job"],
            r["schedule"],
            "yes" if r["scheduled"] else "no",
            _when(r["last_start"]),
            r["last_status"] or "",
            str(r["failures_24h"]),
            (r["last_error"] or "")[:60],
        )
    console.print(table)
    if rows and not any(r["scheduled"] for r in rows):
        console.print(
            "pg_cron has none of them in this database: it lives in the database named by "
            "cron.database_name, and `lake migrate` schedules the jobs there."
        )


@jobs_app.command("runs")
def jobs_runs(
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
) -> None:
    """Show the latest runs recorded by lake.run_maintenance, with what each did."""
    with _lake() as lake:
        rows = lake.job_runs(job, limit)
    table = Table("run", "job", "started", "took", "status", "details / error")
    for r in reversed(rows):
        took = (
            ""
            if r["finished_at"] is None
            else f"{(r['finished_at'] - r['started_at']).total_seconds():.2f} s"
        )
        table.add_row(
            str(r["id"]),
            r["job"],
            _when(r["started_at"]),
            took,
            r["status"],
            (r["error"] or json.dumps(r["details"]))[:80],
        )
    console.print(table)


@jobs_app.command("run")
def jobs_run(
    job: Annotated[str | None, typer.Argument(help="The job; every job when left out.")] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="Work as if it were this time (ISO 8601, e.g. 2027-06-01T00:00:00+00:00): "
            "try what retention or premake will do months ahead."
        ),
    ] = None,
) -> None:
    """Run a job (or all of them) now, as pg_cron would: `CALL lake.run_maintenance(...)`, or
    the statement itself for vacuum and reindex."""
    with _lake() as lake:
        lake.run_job(job, now)
        rows = lake.job_runs(job, 1) if job else []
    if job and rows and rows[0]["job"] == job:
        r = rows[0]
        console.print(f"{job}: {r['status']} (run {r['id']})")
        console.print(json.dumps(r["details"]) if r["error"] is None else r["error"])
    else:
        console.print(f"{job or 'every job'}: done; `lake jobs list` shows how each went")


# -- change capture ----------------------------------------------------------------------------


@app.command()
def bridge(
    name: Annotated[
        str,
        typer.Option(
            help="The bridge's name: its cursor in lake.bridge_cursors (1 to 64 letters, digits,"
            " '_', '.' or '-')."
        ),
    ] = lake_bridge.NAME,
    batch_size: Annotated[
        int, typer.Option(help="Changes per Redis pipeline.")
    ] = lake_bridge.BATCH_SIZE,
    poll: Annotated[
        float, typer.Option(help="Seconds between looks without a NOTIFY.")
    ] = lake_bridge.POLL_S,
    prefix: Annotated[
        str, typer.Option(help="Cache key prefix (lake_client.cache) whose keys it invalidates.")
    ] = lake_bridge.CACHE_PREFIX,
    stream: Annotated[
        str, typer.Option(help="Redis Stream the changes are appended to.")
    ] = lake_bridge.STREAM,
    stream_maxlen: Annotated[
        int,
        typer.Option(
            min=1,
            help="Entries the stream keeps, about (older ones are trimmed; Lake.changes has them"
            " for 7 days). Redis holds them in memory: a change's entry is up to 1 MiB, a few"
            " hundred bytes for typical records.",
        ),
    ] = lake_bridge.STREAM_MAXLEN,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            envvar="LAKE_REDIS_CLUSTER",
            help="Redis is a Redis Cluster: LAKE_REDIS_URL names any one of its nodes and the"
            " bridge finds the others (redis.cluster.RedisCluster instead of redis.Redis).",
        ),
    ] = False,
) -> None:
    """Forward committed changes (lake.data_changes) to Redis until interrupted: invalidate the
    cache, publish on cache.invalidate / cache.update, append to the stream lake:changes."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    redis_url = settings.redis_url()

    def started(b: lake_bridge.Bridge) -> None:
        console.print(
            f"bridge {b.name}: lake.data_changes -> {redis_url.split('@')[-1]} (Ctrl-C stops)"
        )

    b = lake_bridge.run_forever(
        settings.dsn(),
        redis_url,
        cluster=cluster,
        name=name,
        batch_size=batch_size,
        poll_s=poll,
        stream=stream,
        stream_maxlen=stream_maxlen,
        cache_prefix=prefix,
        on_start=started,
    )
    if b is None:  # stopped while waiting for the Redis Cluster
        raise typer.Exit(1)
    console.print(f"bridge {name} stopped at change {b.cursor}")


# -- health and metrics -------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9187,
) -> None:
    """Serve /health/live, /health/ready (PostgreSQL within 2 s, Redis within 1 s) and
    Prometheus /metrics (jobs, quarantine, batches, partitions) until interrupted."""
    from lake_client.server import make_server

    settings = load_settings()
    server = make_server(host, port, settings.dsn(), settings.redis_url())
    console.print(
        f"serving http://{host}:{server.server_port}/health/ready and /metrics (Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- demo -------------------------------------------------------------------------------------


@app.command()
def demo(
    records: Annotated[int, typer.Option(help="How many location records to generate.")] = 100_000,
) -> None:
    """Start the lake, create a location-history dataset, ingest generated records (a few
    percent invalid in realistic ways) and show what happened."""
    from lake_client.demo import run_demo

    run_demo(records, console)


def main() -> None:
    try:
        app()
    except LakeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
