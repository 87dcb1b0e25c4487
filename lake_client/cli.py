"""`lake`: the command line of Datapunk Lake.

Wiring only: each command parses its options, calls the client (or the module that does the
work) and hands the result to lake_client.render. Every command works against the embedded
cluster by default, or against the server named by LAKE_DSN / the PG* variables.

Exit codes (the README's CLI section lists them): 0 done; 1 failed (a one-line message and a
hint on stderr); 2 usage error; 3 records were quarantined and --strict was given; 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from psycopg.conninfo import make_conninfo
from typer.core import TyperGroup

from lake_client import bridge as lake_bridge
from lake_client import loader, local, records, render, telemetry
from lake_client.certs import TlsFiles, rules, save_pair
from lake_client.client import Lake
from lake_client.config import Settings, lake_home, load_settings
from lake_client.errors import ClusterError, ConfigurationError, LakeError
from lake_client.local.processes import Paths

EXIT_FAILURE = 1
EXIT_USAGE = 2  # typer's own code for a usage error
EXIT_QUARANTINED = 3
EXIT_INTERRUPTED = 130

CONTEXT = {"help_option_names": ["-h", "--help"]}


class _Group(TyperGroup):
    """The one place errors become messages and exit codes: a LakeError is one line and its
    hint (exit 1); anything unexpected is one line saying what to do (exit 1), with the
    traceback under --debug or LAKE_DEBUG=1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            raise  # exits, usage errors (exit 2) and a closed pipe: typer reports them itself
        except LakeError as exc:
            render.error(str(exc.args[0]) if exc.args else type(exc).__name__, exc.hint)
            raise typer.Exit(EXIT_FAILURE) from None
        except KeyboardInterrupt:
            render.note("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if ctx.params.get("debug") or render.debug_enabled():
                raise
            render.error(
                f"unexpected {type(exc).__name__}: {exc}",
                "run it again with --debug (or LAKE_DEBUG=1) to see where, and report it",
            )
            raise typer.Exit(EXIT_FAILURE) from None


app = typer.Typer(
    cls=_Group,
    help="Datapunk Lake: a PostgreSQL-native data lake for personal data.\n\n"
    "Runs against the embedded cluster (`lake up`) unless LAKE_DSN or the PG* variables name "
    "another PostgreSQL. Exit codes: 0 done, 1 failed, 2 usage error, 3 records quarantined "
    "under --strict, 130 interrupted.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings=CONTEXT,
)


def _examples(*lines: str) -> str:
    """An epilog of example command lines for a command's --help."""
    return "**Examples**\n\n" + "\n\n".join(f"`{line}`" for line in lines)


def _group(name: str, help_: str, epilog: str | None = None) -> typer.Typer:
    """A sub-command group, built the same way for every group."""
    group = typer.Typer(
        help=help_,
        epilog=epilog,
        no_args_is_help=True,
        rich_markup_mode="markdown",
        context_settings=CONTEXT,
    )
    app.add_typer(group, name=name)
    return group


quarantine_app = _group(
    "quarantine",
    "Review quarantined records.",
    _examples(
        "lake quarantine list --dataset location_history",
        "lake quarantine release 17 --corrected fixed.json --note 'unit fixed'",
        "lake quarantine discard 18 --reason 'sensor glitch'",
        "lake quarantine release --rule maxLength --dataset location_history   # dry run",
        "lake quarantine export --batch 6f1c... -o pending.jsonl",
    ),
)
users_app = _group("users", "Lake users and services (administrators).")
keys_app = _group("keys", "API keys: create (shown once), list, rotate, revoke (administrators).")
audit_app = _group("audit", "The audit log (administrators and auditors).")
jobs_app = _group(
    "jobs", "The scheduled jobs that pg_cron runs inside PostgreSQL (administrators)."
)
oidc_app = _group(
    "oidc",
    "OpenID Connect providers whose ID tokens the lake checks itself (administrators).",
    _examples(
        "lake oidc add google https://accounts.google.com --audience 1234.apps.example.com",
        "lake oidc refresh google   # after the provider rotated its keys",
        "lake oidc list",
    ),
)

certs_app = _group(
    "certs",
    "The lake's CA and the services' client certificates (mTLS, 7 days).",
    _examples(
        "lake certs issue gateway --out /etc/gateway/tls   # administrators",
        "lake certs renew --cert gateway.crt --key gateway.key --dsn 'host=db user=gw …'",
        "lake certs list",
        "lake certs revoke gateway   # or a serial",
        "lake certs ca --pem",
    ),
)

Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="LAKE_API_KEY",
        show_envvar=True,
        help="Act as the user (or service) this API key belongs to.",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        render.say(f"lake (datapunk-lake) {importlib.metadata.version('datapunk-lake')}")
        raise typer.Exit()


# The commands that run as servers: each logs to LAKE_HOME/log/lake-<command>.json, the rest of
# the CLI to lake-cli.json (only where the lake's log folder exists).
_SERVERS = ("serve", "bridge", "grpc")


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="LAKE_DEBUG", help="Show the traceback of an unexpected error."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Datapunk Lake: a PostgreSQL-native data lake for personal data."""
    server = ctx.invoked_subcommand in _SERVERS
    process = str(ctx.invoked_subcommand) if server else "cli"
    telemetry.setup_tracing(process)
    telemetry.setup_logging(
        process,
        lake_home() / "log",
        # The bridge tells its progress on the terminal; the other commands print what they do.
        stderr_level=logging.INFO if process == "bridge" else logging.WARNING,
        create=server,
    )


def _lake() -> Lake:
    return Lake(application_name="lake-cli")


# -- the embedded cluster ---------------------------------------------------------------------


def _status_doc(status: local.ClusterStatus) -> dict[str, Any]:
    return dataclasses.asdict(status) | {"missing_extensions": status.missing_extensions}


@app.command(
    epilog=_examples(
        "lake up",
        "lake up --foreground   # in a container",
        "lake up --with rabbitmq --monitoring",
        "lake up --replicas 2   # Patroni: a primary and two synchronous replicas",
        "lake up --with pgbouncer   # transaction pooling on LAKE_POOL_PORT",
        "lake up --redis-cluster   # 3 masters + 3 replicas instead of one Redis",
    )
)
def up(
    foreground: Annotated[
        bool, typer.Option(help="Stay in the foreground until interrupted (for containers).")
    ] = False,
    monitoring: Annotated[
        bool,
        typer.Option(
            help="Also start Prometheus, Alertmanager, the exporters and `lake serve` on private"
            " ports (LAKE_HOME/monitoring; alerts to LAKE_ALERT_WEBHOOK)."
        ),
    ] = False,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            help="Also start an optional server: rabbitmq (the broker of `lake bridge --amqp`,"
            " on LAKE_AMQP_PORT), pgbouncer (transaction pooling in front of PostgreSQL, TLS 1.3"
            " and SCRAM, on LAKE_POOL_PORT).",
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="Where PostgreSQL listens for TCP (TLS 1.3 only), e.g. 0.0.0.0; default"
            " LAKE_PG_LISTEN or 127.0.0.1. Takes effect when PostgreSQL starts.",
        ),
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            help="Run the embedded PostgreSQL highly available: Patroni and etcd, a primary and"
            " this many streaming replicas, synchronous (ports from LAKE_HA_PORT, else"
            " LAKE_PG_PORT + 10). A lake made so starts so again without it.",
            min=1,
            max=9,
        ),
    ] = None,
    redis_cluster: Annotated[
        bool,
        typer.Option(
            "--redis-cluster",
            help="The lake's Redis is a local Redis Cluster of 3 masters with a replica each"
            " (TLS, ports and folders in LAKE_HOME/redis-cluster), from now on in this LAKE_HOME;"
            " the bridge, the cache and `lake serve` use it.",
        ),
    ] = False,
    json_: Json = False,
) -> None:
    """Start the embedded PostgreSQL and Redis (creating them on first use)."""
    unknown = sorted(set(with_ or ()) - {"rabbitmq", "pgbouncer"})
    if unknown:
        raise typer.BadParameter(
            f"unknown server {unknown[0]!r} (known: rabbitmq, pgbouncer)", param_hint="--with"
        )
    with_rabbitmq = "rabbitmq" in (with_ or ())
    with_pgbouncer = "pgbouncer" in (with_ or ())
    status = local.up(
        with_rabbitmq=with_rabbitmq,
        with_pgbouncer=with_pgbouncer,
        listen=listen,
        replicas=replicas,
        redis_cluster_=redis_cluster,
    )
    if monitoring:
        from lake_client.local import monitoring as lake_monitoring

        stack = lake_monitoring.up()
        for name in ("prometheus", "alertmanager", "lake"):
            line = f"{name}: {stack.url(name)}"
            if json_:  # stdout holds the JSON document alone
                render.note(line)
            else:
                render.say(line, markup=False)
    if json_:
        render.json_doc(_status_doc(status))
    else:
        for line in status.lines():
            render.say(line, markup=False)
    if foreground:
        local.foreground(with_rabbitmq=with_rabbitmq, with_pgbouncer=with_pgbouncer)


@app.command()
def down() -> None:
    """Stop the embedded PostgreSQL and Redis (and pgbouncer, RabbitMQ, the local Redis Cluster
    and the monitoring stack, if they run)."""
    from lake_client.local import monitoring as lake_monitoring

    lake_monitoring.down()
    local.down()
    render.say("stopped")


@app.command(epilog=_examples("lake status", "lake status --json", "lake status || lake up"))
def status(json_: Json = False) -> None:
    """Say what runs, where, and which extensions are available. Exits 1 when PostgreSQL or
    Redis does not answer."""
    found = local.status()
    if json_:
        render.json_doc(_status_doc(found))
    else:
        for line in found.lines():
            render.say(line, markup=False)
    if not (found.pg_running and found.redis_running):
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def dsn() -> None:
    """Print the libpq connection string of the lake's database."""
    render.plain(load_settings().dsn())


# -h is psql's --host: only --help shows this command's help.
@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": ["--help"],
    }
)
def psql(ctx: typer.Context) -> None:
    """Open psql on the lake's database (extra arguments go to psql)."""
    argv = local.psql_command() + list(ctx.args)
    raise typer.Exit(subprocess.call(argv))


@app.command(
    "migrate",
    epilog=_examples("lake migrate", "LAKE_DSN='host=db dbname=lake user=admin' lake migrate"),
)
def migrate_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    json_: Json = False,
) -> None:
    """Bring the lake's database to the latest schema (alembic upgrade)."""
    from lake_client import migrate  # Alembic and SQLAlchemy: a third of every command's start

    dsn_ = load_settings().dsn()
    before = migrate.current_revision(dsn_)
    migrate.upgrade(dsn_, revision)
    after = migrate.current_revision(dsn_)
    if json_:
        render.json_doc({"revision": after, "was": before})
        return
    render.say(
        f"schema at revision {after}" + ("" if before == after else f" (was {before or 'empty'})")
    )


# -- datasets ---------------------------------------------------------------------------------


@app.command()
def datasets(json_: Json = False) -> None:
    """List the datasets."""
    with _lake() as lake:
        rows = lake.datasets()
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("name", "schema", "source format", "time field", "retention", "partitions", "compiled"),
        [
            (
                r["name"],
                f"v{r['schema_version']}",
                r["source_format"] or "",
                f"{r['time_field']} ({r['time_format']})",
                r["retention"],
                f"{r['partitions_from']:%Y-%m} .. {r['partitions_to']:%Y-%m}",
                "yes" if r["compiled"] else "no (PL/Python per row)",
            )
            for r in rows
        ],
    )


def _key_value(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--option")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise LakeError(f"cannot read {render.shown(str(path))}: {exc.strerror}") from None
    except ValueError as exc:
        raise LakeError(f"{render.shown(str(path))} is not {what}: {exc}") from None


@app.command("create-dataset")
def create_dataset(
    name: Annotated[str, typer.Argument(help="Dataset name: lower-case letters, digits, _.")],
    schema_file: Annotated[Path, typer.Argument(help="JSON Schema (draft-07) of a record.")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="key=value, e.g. retention='6 months' (repeatable)."),
    ] = None,
    json_: Json = False,
) -> None:
    """Create a dataset: its table, partitions, policies and validation."""
    options = dict(_key_value(item) for item in option or [])
    schema = _json_file(schema_file, "a JSON Schema")
    with _lake() as lake:
        row = lake.create_dataset(name, schema, **options)
    if json_:
        render.json_doc(row)
        return
    render.say(
        f"created user_data.{row['name']}: partitions {row['partitions_from']:%Y-%m} .. "
        f"{row['partitions_to']:%Y-%m}, retention {row['retention']}"
    )


@app.command("evolve-schema")
def evolve_schema(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    schema_file: Annotated[Path, typer.Argument(help="The new JSON Schema (draft-07).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing: count the rows it would reject.")
    ] = False,
    json_: Json = False,
) -> None:
    """Put a new version of a dataset's JSON Schema in force (administrators)."""
    schema = _json_file(schema_file, "a JSON Schema")
    with _lake() as lake:
        report = lake.evolve_schema(dataset, schema, dry_run=dry_run)
    if json_:
        render.json_doc(report)
        return
    if not dry_run:
        render.say(
            f"{report['dataset']}: schema version {report['version']} in force "
            f"(was {report['previous_version']}); stored rows keep theirs"
        )
        return
    render.say(
        f"{report['dataset']}: version {report['version']} would reject {report['rejected']:,} "
        f"of {report['rows']:,} stored rows (nothing changed)"
    )
    for example in report["examples"]:
        reasons = "; ".join(f"{r['path']}: {r['message']}" for r in example["reasons"])
        render.say(f"  id {example['id']}: {render.shown(reasons)}")


@app.command("drop-dataset")
def drop_dataset(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    archive: Annotated[
        bool, typer.Option("--archive", help="Archive every month first (verified).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Drop its rows without archive.")] = False,
    json_: Json = False,
) -> None:
    """Drop a dataset; refused while it holds rows unless --archive or --force (administrators)."""
    with _lake() as lake:
        report = lake.drop_dataset(dataset, archive=archive, force=force)
    if json_:
        render.json_doc(report)
        return
    how = f", {len(report['archive_ids'])} archive(s) kept" if report["archived"] else ""
    render.say(f"dropped {report['dataset']}: {report['rows']:,} rows{how}")


@app.command()
def partitions(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    json_: Json = False,
) -> None:
    """List the partitions with their ranges, sizes and tiers."""
    with _lake() as lake:
        rows = lake.partitions(dataset)
    if json_:
        render.json_doc(rows)
    else:
        render.partitions(rows)


@app.command()
def archives(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    json_: Json = False,
) -> None:
    """List the archives of expired months (written by retention, restorable)."""
    with _lake() as lake:
        rows = lake.archives(dataset)
    if json_:
        render.json_doc(rows)
        return
    out = []
    for r in rows:
        status = r["status"]
        if r["hold_until"] is not None and status == "restored":
            status += f" (held until {r['hold_until']:%Y-%m-%d})"
        out.append(
            (
                r["id"],
                r["dataset"],
                r["month"],
                f"{r['rows']:,}",
                f"{r['bytes'] / 1024:,.0f} kB",
                status,
                render.when(r["created_at"]),
                r["path"] if r["error"] is None else f"{r['path']}\n{r['error']}",
            )
        )
    render.table(("id", "dataset", "month", "rows", "size", "status", "created", "path"), out)


def _month(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise typer.BadParameter("the month is written YYYY-MM, e.g. 2025-11")
    return value


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise typer.BadParameter("a time such as 2026-12-08T10:15:00Z") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs a time zone, e.g. 2026-12-08T10:15:00Z")
    return moment


@app.command(
    epilog=_examples(
        "lake restore location_history 2025-11   # an archived month",
        "lake restore --to 2026-12-08T10:15:00Z --target-dir /srv/lake-restored",
    )
)
def restore(
    dataset: Annotated[str | None, typer.Argument(help="The dataset.")] = None,
    month: Annotated[
        str | None, typer.Argument(help="The archived month, YYYY-MM.", callback=_month)
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Restore the whole lake from its backups as it was at this time (with a time"
            " zone), into a fresh data directory (point-in-time recovery).",
        ),
    ] = None,
    target_dir: Annotated[
        Path | None,
        typer.Option(
            help="With --to: where the restored data directory goes (absent or empty; default"
            " LAKE_HOME/pg, which must then be moved away first).",
        ),
    ] = None,
    json_: Json = False,
) -> None:
    """Bring an archived month back into the dataset (administrators), or with --to the whole
    lake from its backups (`lake backup`) as it was at that time."""
    moment = _moment(to)
    if moment is not None:
        if dataset is not None or month is not None:
            raise typer.BadParameter("--to restores the whole lake: give no dataset or month")
        from lake_client.local import backup as lake_backup

        done = lake_backup.restore(load_settings(), moment, target_dir, render.note)
        if json_:
            render.json_doc(done)
            return
        render.say(
            f"restored the lake as of {done['to']} into {done['target_dir']} (timeline "
            f"{done['timeline']}); to switch over: lake down, move LAKE_HOME/pg away, move "
            f"{done['target_dir']} to LAKE_HOME/pg, lake up",
            markup=False,
        )
        return
    if dataset is None or month is None:
        raise typer.BadParameter("give a dataset and an archived month, or --to TIME")
    if target_dir is not None:
        raise typer.BadParameter("--target-dir goes with --to")
    with _lake() as lake:
        row = lake.restore(dataset, month)
    if json_:
        render.json_doc(row)
        return
    render.say(
        f"restored {row['dataset']} {row['month']}: {row['rows']:,} rows from {row['path']}; "
        f"kept until at least {row['hold_until']:%Y-%m-%d %H:%M} UTC"
    )


# -- backups ----------------------------------------------------------------------------------

backup_app = typer.Typer(
    help="Backups of the embedded cluster with pgBackRest (encrypted repository, WAL archived"
    " continuously): `lake backup` takes one, `lake backup list` lists them; `lake restore --to`"
    " brings the lake back to a point in time.",
    epilog=_examples(
        "lake backup --type full",
        "lake backup   # incremental (full when there is none yet)",
        "lake backup list --json",
    ),
    invoke_without_command=True,
    rich_markup_mode="markdown",
    context_settings=CONTEXT,
)
app.add_typer(backup_app, name="backup")


def _backup_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["label"],
            r["type"],
            r["stopped_at"],
            f"{r['seconds']} s",
            f"{(r['database_bytes'] or 0) / 2**20:,.1f} MB",
            f"{(r['repository_bytes'] or 0) / 2**20:,.1f} MB",
        )
        for r in rows
    ]


_BACKUP_HEADERS = ("label", "type", "finished", "took", "database", "stored")


@backup_app.callback()
def backup_take(
    ctx: typer.Context,
    type_: Annotated[
        str,
        typer.Option("--type", help="full, diff or incr (the first backup is always full)."),
    ] = "incr",
    json_: Json = False,
) -> None:
    """Take a backup now (and expire those past backup_retention_full)."""
    if ctx.invoked_subcommand is not None:
        return
    from lake_client.local import backup as lake_backup

    if type_ not in lake_backup.BACKUP_TYPES:
        raise typer.BadParameter("full, diff or incr", param_hint="--type")
    row = lake_backup.backup(load_settings(), type_)
    if json_:
        render.json_doc(row)
        return
    render.table(_BACKUP_HEADERS, _backup_rows([row]))


@backup_app.command("list")
def backup_list(json_: Json = False) -> None:
    """The backups in the repository, oldest first."""
    from lake_client.local import backup as lake_backup

    rows = lake_backup.backups(load_settings())
    if json_:
        render.json_doc(rows)
        return
    render.table(_BACKUP_HEADERS, _backup_rows(rows))


# -- ingest -----------------------------------------------------------------------------------


@app.command(
    epilog=_examples(
        "lake ingest location_history points.jsonl --user alice",
        "lake ingest location_history takeout.zip --api-key lake_0123…   # every member",
        "lake ingest places Records.json --user alice   # the dataset's source format",
        "zcat points.csv.gz | lake ingest location_history - --format csv --user alice",
        "lake ingest location_history points.json.xz --user alice --strict --json",
        "lake ingest location_history points.jsonl --user alice --jobs 1   # in the file's order",
    )
)
def ingest(
    dataset: Annotated[str, typer.Argument(help="The dataset to load into.")],
    file: Annotated[
        str,
        typer.Argument(
            help="JSON Lines, a JSON array or CSV with a header, or a file of the dataset's "
            "source format (lake.source_formats()); gzip, bzip2, xz or a zip archive (each member "
            "loaded; a Takeout zip's members go to the datasets of their formats); - reads stdin.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        Literal["jsonl", "json", "csv"] | None,
        typer.Option(
            "--format",
            "-f",
            help="The format (default: the dataset's source format, else by the name, else "
            "content).",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Lake user who owns the records (administrators)."),
    ] = None,
    api_key: ApiKey = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per transaction.")] = 10_000,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            show_default="the server's CPU cores",
            help="Sessions loading batches side by side, each batch one transaction.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with 3 when any record was quarantined.")
    ] = False,
    json_: Json = False,
) -> None:
    """Load records into a dataset: validated in the database, invalid records quarantined.

    Prints accepted, archived (history older than the lake's first month, in its month's archive)
    and quarantined counts and the most common reasons. A file is read through
    once before anything is written, so a damaged file stores nothing; batch ids come from the
    content, so running the same command again (after Ctrl-C, say, or with other --jobs) skips
    what was stored. Batches load on as many sessions as the server has CPU cores unless --jobs
    says otherwise; each batch is one transaction, stored whole or not at all.
    """
    if user and api_key:
        raise typer.BadParameter(
            "give --user (administrators) or --api-key (the key's owner), not both",
            param_hint="--user / --api-key",
        )
    sources = records.sources(file, fmt)  # a missing or unreadable file fails before connecting
    load = loader.Load(dataset)
    with _lake() as lake:
        principal = user
        if api_key:
            principal = lake.authenticate(api_key)
        elif user:
            lake.act_as(user)
        try:
            types = loader.prepare(lake, load, sources, principal, batch_size)
            name = sources[0].label if len(sources) == 1 else records.printable(Path(file).name)
            with render.progress(f"{name} → {dataset}", load.total_records) as bar:
                loader.run(
                    lake,
                    load,
                    types,
                    batch_size=batch_size,
                    jobs=jobs,
                    on_batch=lambda r: bar(r.received, r.received),
                )
        except KeyboardInterrupt:
            render.stored_so_far(load, "interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except LakeError:
            if load.committed_batches:
                render.stored_so_far(load, "stopped by the error below")
            raise
    if json_:
        render.json_doc(render.load_doc(load))
    else:
        render.load(load)
    quarantined = sum(s.quarantined for s in load.summaries)
    if strict and quarantined:
        render.note(f"{quarantined:,} record(s) were quarantined (--strict): exit code 3")
        raise typer.Exit(EXIT_QUARANTINED)


# -- time series ------------------------------------------------------------------------------


@app.command(
    epilog=_examples(
        "lake series steps --bucket '1 day' --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z"
        " --api-key lake_0123…",
        "lake series steps --bucket '1 hour' --from 2026-11-30T00:00:00Z --to 2026-12-01T00:00:00Z"
        " --field count --agg sum --fill --user alice --json   # administrators",
    )
)
def series(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    bucket: Annotated[
        str, typer.Option("--bucket", "-b", help="The bucket: '15 minutes', '1 day', '1 month'.")
    ],
    from_: Annotated[
        str, typer.Option("--from", help="Start of the range (included), with a time zone.")
    ],
    to: Annotated[str, typer.Option("--to", help="End of the range (excluded), with a time zone.")],
    field: Annotated[
        str | None,
        typer.Option("--field", "-f", help="A numeric field (a.b for a nested one)."),
    ] = None,
    agg: Annotated[
        str,
        typer.Option(
            "--agg", "-a", help="count, sum, avg, min, max, stddev, first or last (count)."
        ),
    ] = "count",
    fill: Annotated[bool, typer.Option("--fill", help="Every bucket, empty ones too.")] = False,
    timezone: Annotated[
        str, typer.Option("--timezone", "--tz", help="Days and months begin at midnight here.")
    ] = "UTC",
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="The lake user whose records (administrators)."),
    ] = None,
    api_key: ApiKey = None,
    json_: Json = False,
) -> None:
    """A person's records of a dataset in time buckets (lake.series): per bucket, the records
    and an aggregate of one numeric field, for their own records only."""
    if bool(user) == bool(api_key):
        raise typer.BadParameter(
            "give --user (administrators) or --api-key (your own records)",
            param_hint="--user / --api-key",
        )
    # Checked here (a time zone is required), before connecting; _moment gives None only for None.
    start, end = _moment(from_) or from_, _moment(to) or to
    with _lake() as lake:
        if api_key:
            lake.authenticate(api_key)
        else:
            lake.act_as(str(user))
        rows = lake.series(dataset, bucket, start, end, field, agg, fill=fill, timezone=timezone)
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("bucket", "records", agg), [(r["bucket"], r["records"], r["value"]) for r in rows]
    )


# -- a person's rights ------------------------------------------------------------------------


@app.command(
    epilog=_examples(
        "lake export --user alice                  # administrators: alice-export.zip",
        "lake export --api-key lake_0123… -o mine.zip   # your own data",
    )
)
def export(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="The lake user to export (administrators)."),
    ] = None,
    api_key: ApiKey = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The zip to write (default: <user>-export.zip)."),
    ] = None,
    json_: Json = False,
) -> None:
    """Write everything the lake holds about a person to a zip of JSON Lines (GDPR art. 15, 20).

    Every dataset's records (archived months too), quarantined items, PII findings and the
    audit entries about them, with a manifest of line counts and SHA-256s. Streamed: memory
    does not grow with the data. Audited (user.export).
    """
    if bool(user) == bool(api_key):
        raise typer.BadParameter(
            "give --user (administrators) or --api-key (your own data)",
            param_hint="--user / --api-key",
        )
    with _lake() as lake:
        subject = user or lake.authenticate(str(api_key))
        target = output or Path(f"{subject}-export.zip")
        manifest = lake.export_user(target, user)
    if json_:
        render.json_doc({"path": str(target), **manifest})
        return
    render.table(
        ("file", "lines", "bytes", "sha256"),
        [(f["name"], f"{f['lines']:,}", f"{f['bytes']:,}", f["sha256"]) for f in manifest["files"]],
    )
    render.say(f"wrote {target}")


@app.command(
    epilog=_examples(
        "lake erase --user alice --reason 'ticket 1234'   # administrators: erase now",
        "lake erase --api-key lake_0123… --reason 'please forget me'   # ask for your own",
    )
)
def erase(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="The lake user to erase (administrators)."),
    ] = None,
    api_key: ApiKey = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required to erase; kept with it).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for the bridges to take the person out of Redis."),
    ] = 30.0,
    json_: Json = False,
) -> None:
    """Erase a person from every store (GDPR art. 17), or ask for your own erasure.

    Administrators (--user): records of every dataset, the archives (rewritten without them and
    verified), quarantine, PII findings, batches, undo images, change log, audit payloads and
    their identity, in one transaction; then the superseded archive files are deleted and the
    bridges take them out of the Redis cache and stream. Prints the erasure report (counts,
    never values). With your own key (--api-key): records a request an administrator performs.
    """
    if bool(user) == bool(api_key):
        raise typer.BadParameter(
            "give --user (administrators) or --api-key (your own erasure)",
            param_hint="--user / --api-key",
        )
    with _lake() as lake:
        if api_key:
            subject = lake.authenticate(str(api_key))
            erasure_id = lake.request_erasure(None, reason)
            doc: dict[str, Any] = {"erasure_id": erasure_id, "user": subject, "status": "requested"}
            if json_:
                render.json_doc(doc)
            else:
                render.say(
                    f"erasure {erasure_id} of {subject} requested: an administrator performs it"
                )
            return
        if not reason:
            raise typer.BadParameter("erasing needs a reason", param_hint="--reason")
        report = lake.erase(str(user), reason, wait=wait)
    if json_:
        render.json_doc(report)
        return
    records = report.get("records", {})
    rows = [(f"records/{name}", f"{n:,}") for name, n in sorted(records.items())]
    archives = report.get("archives", {})
    rows.append(("archives rewritten", f"{archives.get('rewritten', 0):,}"))
    rows.append(("archived records", f"{archives.get('records', 0):,}"))
    for key in (
        "quarantine",
        "pii_findings",
        "batches",
        "undo_images",
        "checkpoints",
        "change_events",
        "audit_entries_redacted",
        "api_keys",
        "oauth_identities",
        "profile",
    ):
        rows.append((key, f"{report.get(key, 0):,}"))
    render.table(("store", "removed"), rows)
    if report["status"] == "done":
        render.say(f"erasure {report['erasure_id']} done")
    else:
        behind = ", ".join(report.get("redis", {}).get("waiting_for", []))
        render.note(
            f"erasure {report['erasure_id']}: the database's part is done; Redis waits for "
            f"bridge(s) {behind}; SELECT lake.finish_erasure({report['erasure_id']}) completes "
            "it once they are past it"
        )


# -- checkpoints and rollback -----------------------------------------------------------------


@app.command("checkpoint")
def checkpoint_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    label: Annotated[str, typer.Option(help="What the checkpoint is for.")] = "manual",
    json_: Json = False,
) -> None:
    """Record a recovery point of a dataset (kept 24 hours)."""
    with _lake() as lake:
        row = lake.checkpoint(dataset, label)
    if json_:
        render.json_doc(row)
        return
    render.say(
        f"checkpoint {row['id']} of {dataset} ({row['label']}) at {render.when(row['created_at'])}"
    )


@app.command("checkpoints")
def checkpoints_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset.")], json_: Json = False
) -> None:
    """List a dataset's checkpoints, newest first; a rollback may target the last 5."""
    with _lake() as lake:
        rows = lake.checkpoints(dataset)
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("id", "label", "created", "expires", "by", "rollback"),
        [
            (
                r["id"],
                r["label"],
                r["created_at"],
                r["expires_at"],
                r["lake_user"] or r["db_role"],
                "yes" if r["can_rollback"] else "no",
            )
            for r in rows
        ],
    )


@app.command("rollback")
def rollback_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    checkpoint_id: Annotated[int, typer.Argument(help="One of its last 5 checkpoints.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: Json = False,
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
    if json_:
        render.json_doc(row)
        return
    render.say(
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


@quarantine_app.command(
    "list",
    epilog=_examples(
        "lake quarantine list --dataset location_history",
        "lake quarantine list --status all --limit 1000 --json",
    ),
)
def quarantine_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    status_: Annotated[
        Literal["pending", "expired", "released", "corrected", "discarded", "all"],
        typer.Option("--status", help="Which items."),
    ] = "pending",
    limit: Annotated[int, typer.Option(min=1, help="At most this many items.")] = 50,
    json_: Json = False,
) -> None:
    """Show quarantined records with their reasons (administrators)."""
    with _lake() as lake:
        rows = lake.quarantine(dataset, None if status_ == "all" else status_, limit)
    if json_:
        render.json_doc(rows)
        return
    out = []
    for r in rows:
        reasons = "; ".join(f"{x['rule']} at {x['path']}: {x['message']}" for x in r["reasons"])
        record = json.dumps(r["doc"]) if r["doc"] is not None else repr(bytes(r["raw"]))
        out.append(
            (
                r["id"],
                r["dataset"],
                r["record_ref"],
                r["user_id"],
                r["status"],
                reasons,
                record[:80] if render.console.is_terminal else record,
            )
        )
    render.table(("id", "dataset", "ref", "user", "status", "reasons", "record"), out)


# Filters of a bulk decision and of the export (lake.quarantine_pending).
QDataset = Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")]
QBatch = Annotated[str | None, typer.Option("--batch", help="Only items of this batch (id).")]
QUser = Annotated[str | None, typer.Option("--user", help="Only this user's items.")]
QRule = Annotated[
    str | None, typer.Option("--rule", help="Only items with a reason of this rule, e.g. maximum.")
]
QFrom = Annotated[
    datetime | None,
    typer.Option("--from", help="Only items quarantined at or after this time (UTC)."),
]
QTo = Annotated[
    datetime | None, typer.Option("--to", help="Only items quarantined before this time (UTC).")
]
QApply = Annotated[
    bool, typer.Option("--apply", help="Decide; without it, a dry run that changes nothing.")
]
QAll = Annotated[
    bool, typer.Option("--all", help="Every item awaiting a decision (no filter needed).")
]


def _utc(value: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _filters(
    dataset: str | None,
    batch: str | None,
    user: str | None,
    rule: str | None,
    from_: datetime | None,
    to: datetime | None,
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "batch_id": batch,
        "user_id": user,
        "rule": rule,
        "received_from": _utc(from_),
        "received_before": _utc(to),
    }


def _decide(
    action: str,
    item: int | None,
    filters: dict[str, Any],
    apply: bool,
    all_items: bool,
    note: str | None,
    json_: bool,
) -> dict[str, Any] | None:
    """A bulk decision when no item is named; None when one is (the single command runs)."""
    chosen = any(v is not None for v in filters.values()) or all_items
    if item is not None:
        if chosen or apply:
            raise typer.BadParameter(
                "name one item, or filters (--dataset, --batch, --user, --rule, --from, --to, "
                "--all) for a bulk decision, not both",
                param_hint="ITEM",
            )
        return None
    with _lake() as lake:
        report = lake.quarantine_decide(
            action, **filters, dry_run=not apply, note=note, all_items=all_items
        )
    if json_:
        render.json_doc(report)
        return report
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(report["outcomes"].items())) or "nothing"
    what = f"dry run of {action}" if report["dry_run"] else action
    render.say(f"{what} on {report['items']:,} item(s) awaiting a decision: {outcomes}")
    if report["by_rule"]:
        render.table(
            ("rule", "outcome", "items"),
            [(r["rule"], r["outcome"], r["items"]) for r in report["by_rule"]],
        )
    for bad in report["invalid"]:
        reasons = "; ".join(f"{x['rule']} at {x['path']}: {x['message']}" for x in bad["reasons"])
        render.say(f"still invalid: item {bad['id']}: {reasons}", markup=False)
    if report["dry_run"]:
        render.note("dry run: nothing changed; add --apply to decide")
    return report


@quarantine_app.command(
    "release",
    epilog=_examples(
        "lake quarantine release 17 --corrected fixed.json --note 'unit fixed'",
        "lake quarantine release --dataset location_history --rule maxLength   # dry run",
        "lake quarantine release --batch 6f1c... --apply --note 'schema v2 allows it'",
    ),
)
def quarantine_release(
    item: Annotated[int | None, typer.Argument(help="Quarantine id (or use filters).")] = None,
    corrected: Annotated[
        Path | None, typer.Option(help="A file with the corrected record (JSON).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why it may enter.")] = None,
    dataset: QDataset = None,
    batch: QBatch = None,
    user: QUser = None,
    rule: QRule = None,
    from_: QFrom = None,
    to: QTo = None,
    apply: QApply = False,
    all_items: QAll = False,
    json_: Json = False,
) -> None:
    """Re-validate a quarantined record (or a corrected one) and move it into its dataset; or,
    with filters instead of an id, every item they match (a dry run unless --apply)."""
    filters = _filters(dataset, batch, user, rule, from_, to)
    if item is None and corrected is not None:
        raise typer.BadParameter("--corrected needs an item id", param_hint="--corrected")
    if _decide("release", item, filters, apply, all_items, note, json_) is not None:
        return
    assert item is not None
    fixed = _json_file(corrected, "JSON") if corrected else None
    with _lake() as lake:
        batch_row = lake.quarantine_release(item, fixed, note)
    if json_:
        render.json_doc(batch_row)
        return
    render.say(f"released item {item} as batch {batch_row['id']}")


@quarantine_app.command(
    "discard",
    epilog=_examples(
        "lake quarantine discard 18 --reason 'sensor glitch'",
        "lake quarantine discard --user bob --reason 'test device' --apply",
    ),
)
def quarantine_discard(
    reason: Annotated[str, typer.Option(help="Why it will not enter (required).")],
    item: Annotated[int | None, typer.Argument(help="Quarantine id (or use filters).")] = None,
    dataset: QDataset = None,
    batch: QBatch = None,
    user: QUser = None,
    rule: QRule = None,
    from_: QFrom = None,
    to: QTo = None,
    apply: QApply = False,
    all_items: QAll = False,
    json_: Json = False,
) -> None:
    """Record that a quarantined record will not enter the lake, and why; or, with filters
    instead of an id, every item they match (a dry run unless --apply)."""
    filters = _filters(dataset, batch, user, rule, from_, to)
    if _decide("discard", item, filters, apply, all_items, reason, json_) is not None:
        return
    assert item is not None
    with _lake() as lake:
        row = lake.quarantine_discard(item, reason)
    if json_:
        render.json_doc(row)
        return
    render.say(f"discarded item {item}")


@quarantine_app.command(
    "export",
    epilog=_examples(
        "lake quarantine export --batch 6f1c... -o pending.jsonl",
        "lake quarantine import pending.jsonl   # after fixing each line's doc",
    ),
)
def quarantine_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSON Lines file to write.")],
    dataset: QDataset = None,
    batch: QBatch = None,
    user: QUser = None,
    rule: QRule = None,
    from_: QFrom = None,
    to: QTo = None,
    json_: Json = False,
) -> None:
    """Write the items awaiting a decision that match the filters as JSON Lines (id, reasons,
    the record as sent in doc), to fix and import again as corrections."""
    with _lake() as lake:
        n = lake.quarantine_export(output, **_filters(dataset, batch, user, rule, from_, to))
    if json_:
        render.json_doc({"path": str(output), "items": n})
        return
    render.say(
        f"wrote {n:,} pending item(s) to {render.shown(str(output))}; fix each doc, then: "
        f"lake quarantine import {render.shown(str(output))}",
        markup=False,
    )


@quarantine_app.command("import")
def quarantine_import(
    path: Annotated[Path, typer.Argument(help="A file written by lake quarantine export.")],
    note: Annotated[str | None, typer.Option(help="Why the corrections may enter.")] = None,
    json_: Json = False,
) -> None:
    """Send each line's doc as a correction of its item: stored (the item is marked
    corrected), or still invalid (the item stays pending, the reasons are shown). Importing
    the same file again changes nothing."""
    with _lake() as lake:
        done = lake.quarantine_import(path, note)
    if json_:
        render.json_doc(done)
        return
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(done["outcomes"].items())) or "nothing"
    render.say(f"{done['lines']:,} line(s): {outcomes}")
    for bad in done["invalid"]:
        reasons = "; ".join(f"{x['rule']} at {x['path']}: {x['message']}" for x in bad["reasons"])
        render.say(f"line {bad['line']} (item {bad['id']}) still invalid: {reasons}", markup=False)
    for err in done["errors"]:
        render.say(f"line {err['line']} (item {err['id']}): {err['message']}", markup=False)


# -- users, keys, audit -----------------------------------------------------------------------


@users_app.command("add")
def users_add(
    user_id: Annotated[str, typer.Argument(help="The id: letters, digits and . _ @ : + -")],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    service: Annotated[
        bool, typer.Option("--service", help="A service (gateway) that acts for users.")
    ] = False,
    json_: Json = False,
) -> None:
    """Register a lake user, or with --service a gateway that may act for users."""
    with _lake() as lake:
        row = lake.create_user(user_id, name, "service" if service else "user")
    if json_:
        render.json_doc(row)
        return
    render.say(f"created {row['kind']} {row['id']}; next: `lake keys create {row['id']}`")


@users_app.command("list")
def users_list(json_: Json = False) -> None:
    """Show users and services with their number of active keys."""
    with _lake() as lake:
        rows = lake.users()
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("id", "kind", "name", "created", "disabled", "active keys"),
        [
            (
                r["id"],
                r["kind"],
                r["display_name"],
                r["created_at"],
                r["disabled_at"],
                r["active_keys"],
            )
            for r in rows
        ],
    )


@users_app.command("disable")
def users_disable(
    user_id: Annotated[str, typer.Argument(help="User or service id.")], json_: Json = False
) -> None:
    """Stop a user's or service's keys from authenticating (the data stays)."""
    with _lake() as lake:
        row = lake.set_user_enabled(user_id, False)
    if json_:
        render.json_doc(row)
        return
    render.say(f"disabled {user_id}")


@users_app.command("enable")
def users_enable(
    user_id: Annotated[str, typer.Argument(help="User or service id.")], json_: Json = False
) -> None:
    """Let a disabled user or service authenticate again."""
    with _lake() as lake:
        row = lake.set_user_enabled(user_id, True)
    if json_:
        render.json_doc(row)
        return
    render.say(f"enabled {user_id}")


def _new_key(row: dict[str, Any], json_: bool) -> None:
    if json_:
        render.json_doc(row)
        return
    render.say(f"key id:  {row['key_id']}", markup=False)
    render.say(f"scopes:  {', '.join(row['scopes'])}", markup=False)
    render.say(f"expires: {render.when(row['expires_at']) or 'never'}", markup=False)
    render.say("API key (shown only now; the lake keeps only its hash):")
    render.plain(row["api_key"])


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Argument(help="The user or service the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="read and/or write (repeat the option; both if none).")
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Days until the key expires (never if not given).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    json_: Json = False,
) -> None:
    """Make an API key. It is printed once; store it where the app or service reads it."""
    expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
    with _lake() as lake:
        row = lake.create_key(principal, scope or ("read", "write"), expires, label)
    _new_key(row, json_)


@keys_app.command("list")
def keys_list(
    principal: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
    json_: Json = False,
) -> None:
    """Show keys (never their secrets): scopes, state, expiry, last use."""
    with _lake() as lake:
        rows = lake.keys(principal)
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("key id", "for", "scopes", "state", "label", "created", "expires", "last used"),
        [
            (
                r["id"],
                r["principal"],
                ",".join(r["scopes"]),
                r["state"],
                r["label"],
                r["created_at"],
                r["expires_at"],
                r["last_used_at"],
            )
            for r in rows
        ],
        no_wrap=("key id",),  # what rotate and revoke take
    )


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key id (16 hex digits).")],
    json_: Json = False,
) -> None:
    """Replace a key with a new one (same scopes); the old one stops working now."""
    with _lake() as lake:
        row = lake.rotate_key(key_id)
    _new_key(row, json_)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (16 hex digits).")],
    json_: Json = False,
) -> None:
    """Revoke a key: it stops authenticating, and sessions it opened lose their identity."""
    with _lake() as lake:
        lake.revoke_key(key_id)
    if json_:
        render.json_doc({"key_id": key_id, "revoked": True})
        return
    render.say(f"revoked {key_id}")


def _cert_out(row: dict[str, Any], service: str, out: Path, json_: bool) -> None:
    """Save a service's new certificate, key and the CA's certificate under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    cert, key, ca = out / f"{service}.crt", out / f"{service}.key", out / "ca.crt"
    save_pair(cert, key, row["certificate"], row["private_key"])
    ca.write_text(row["ca_certificate"])
    doc = {
        "service": service,
        "serial": row["serial"],
        "not_after": row["not_after"],
        "sslcert": str(cert),
        "sslkey": str(key),
        "sslrootcert": str(ca),
    }
    if json_:
        render.json_doc(doc)
        return
    render.say(
        f"certificate {row['serial']} for {service}, valid until {render.when(row['not_after'])}",
        markup=False,
    )
    render.say(f"written: {cert}, {key} (0600, the only copy), {ca}", markup=False)
    render.say(
        "connect with: sslmode=verify-full sslrootcert=… sslcert=… sslkey=…, then "
        "SELECT lake.authenticate_cert()",
        markup=False,
    )


@certs_app.command("issue")
def certs_issue(
    service: Annotated[
        str, typer.Argument(help="The service (lake users create … --kind service).")
    ],
    scope: Annotated[
        list[str] | None, typer.Option(help="read and/or write (repeat the option; both if none).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for SERVICE.crt, SERVICE.key and ca.crt.")
    ] = Path(),
    json_: Json = False,
) -> None:
    """Issue a service's first client certificate (7 days). Its key is written once, here."""
    with _lake() as lake:
        row = lake.issue_service_cert(service, scope or ("read", "write"))
    _cert_out(row, service, out, json_)


@certs_app.command("renew")
def certs_renew(
    cert: Annotated[Path, typer.Option(help="The service's current certificate (replaced).")],
    key: Annotated[Path, typer.Option(help="Its key (replaced).")],
    dsn: Annotated[
        str | None,
        typer.Option(envvar="LAKE_DSN", help="The service's TLS connection (host, user, …)."),
    ] = None,
    json_: Json = False,
) -> None:
    """A service renews its own certificate, proving who it is with the current one."""
    settings = load_settings()
    target = make_conninfo(dsn or settings.tcp_dsn(), sslcert=str(cert), sslkey=str(key))
    with Lake(target, application_name="lake-cli") as lake:
        row = lake.renew_service_cert()
    save_pair(cert, key, row["certificate"], row["private_key"])
    if json_:
        render.json_doc({"serial": row["serial"], "not_after": row["not_after"]})
        return
    render.say(
        f"renewed: certificate {row['serial']} until {render.when(row['not_after'])} "
        f"in {cert}, {key}",
        markup=False,
    )


@certs_app.command("revoke")
def certs_revoke(
    which: Annotated[
        str, typer.Argument(help="A certificate's serial, or a service (all of its).")
    ],
    json_: Json = False,
) -> None:
    """Revoke: the certificates stop authenticating, their sessions lose their identity."""
    with _lake() as lake:
        n = lake.revoke_service_cert(which)
    if json_:
        render.json_doc({"which": which, "revoked": n})
        return
    render.say(f"revoked {n} certificate(s) of {which}", markup=False)


@certs_app.command("list")
def certs_list(
    service: Annotated[str | None, typer.Argument(help="Only this service's.")] = None,
    json_: Json = False,
) -> None:
    """Show the services' certificates: serial, service, scopes, state, validity."""
    with _lake() as lake:
        rows = lake.service_certs(service)
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("serial", "service", "scopes", "state", "until", "renewed from"),
        [
            (
                r["serial"],
                r["service"],
                ",".join(r["scopes"]),
                r["state"],
                r["not_after"],
                r["renewed_from"],
            )
            for r in rows
        ],
        no_wrap=("serial",),
    )


@certs_app.command("ca")
def certs_ca(
    pem: Annotated[bool, typer.Option("--pem", help="Print the certificate itself.")] = False,
    json_: Json = False,
) -> None:
    """Where the lake's CA certificate is (what clients trust: sslrootcert), or its PEM."""
    path = TlsFiles(Paths(load_settings().home).tls).ca_cert
    if not path.exists():
        raise ConfigurationError(f"no CA certificate at {path}", hint="`lake up` makes it")
    text = path.read_text()
    if json_:
        info = rules().info(text.encode())
        render.json_doc(
            {
                "path": str(path),
                "subject": info.common_name,
                "not_after": info.not_after.isoformat(),
                "fingerprint": info.fingerprint,
                **({"pem": text} if pem else {}),
            }
        )
        return
    render.plain(text.rstrip("\n") if pem else str(path))


def _oidc_out(rows: list[dict[str, Any]], json_: bool) -> None:
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("name", "issuer", "audiences", "keys", "fetched"),
        [
            (r["name"], r["issuer"], ", ".join(r["audiences"]), r["keys"], r["fetched_at"])
            for r in rows
        ],
    )


@oidc_app.command("add")
def oidc_add(
    name: Annotated[str, typer.Argument(help="The provider's name in OAuth links, e.g. google.")],
    issuer: Annotated[str, typer.Argument(help="The issuer, exactly as its tokens' iss reads.")],
    audience: Annotated[
        list[str], typer.Option(help="A client id whose tokens are accepted (repeat the option).")
    ],
    json_: Json = False,
) -> None:
    """Add a provider (or replace one): its keys are fetched here, through its discovery
    document, and stored in the lake, which does not reach the network itself."""
    from lake_client import oidc

    jwks = oidc.fetch_keys(issuer)
    with _lake() as lake:
        row = lake.set_oidc_provider(name, issuer, audience, jwks)
    _oidc_out([row], json_)


@oidc_app.command("refresh")
def oidc_refresh(
    name: Annotated[str, typer.Argument(help="The provider.")],
    json_: Json = False,
) -> None:
    """Fetch a provider's keys again (after it rotated them) and store them."""
    with _lake() as lake:
        row = lake.refresh_oidc_provider(name)
    _oidc_out([row], json_)


@oidc_app.command("list")
def oidc_list(json_: Json = False) -> None:
    """The providers: issuer, accepted audiences, how many keys, when fetched."""
    with _lake() as lake:
        rows = lake.oidc_providers()
    _oidc_out(rows, json_)


def _witness_redis() -> Any:
    """The Redis that holds the witness stream, or None when none is set up."""
    import redis
    from redis.cluster import RedisCluster

    settings = load_settings()
    try:
        url = settings.redis_url()
        return RedisCluster.from_url(url) if settings.redis_cluster else redis.Redis.from_url(url)
    # no embedded Redis password yet, an invalid URL, or no node of a cluster answers
    except (OSError, ValueError, redis.exceptions.RedisClusterException):
        return None


@audit_app.command("verify")
def audit_verify(json_: Json = False) -> None:
    """Check the audit log's hash chain, then compare it with its signed witnesses (the file
    and the Redis stream the bridge appends to); exit 1 and say what is wrong if either fails."""
    from lake_client import witness

    settings = load_settings()
    key = witness.load_key(witness.key_path(settings))
    client = _witness_redis()
    try:
        with _lake() as lake:
            row = lake.verify_audit_chain()
            found = (
                None
                if key is None
                else witness.check(
                    lake.conn, key.public_key(), witness.folder_path(settings), client
                )
            )
    finally:
        if client is not None:
            client.close()
    ok = bool(row["ok"]) and (found is None or found.ok)
    if json_:
        render.json_doc(
            {**row, "ok": ok, "chain_ok": row["ok"]}
            | {"witnesses": None if found is None else dataclasses.asdict(found)}
        )
    else:
        if row["ok"]:
            render.say(f"audit chain intact: {row['entries']:,} entries")
        else:
            render.error(f"audit chain broken at entry {row['first_bad_id']}: {row['problem']}")
        if found is None:
            render.say(
                f"no witness key at {witness.key_path(settings)}: the chain's head was never"
                " witnessed (`lake bridge` or `lake audit witness` witnesses it)"
            )
        else:
            render.say(
                f"witnesses: {found.checked:,} checked against the chain, {found.purged:,} of"
                f" entries dropped by retention, {found.other_lakes:,} of other databases"
                f" (newest {found.newest or 'none'}; from {', '.join(found.sources) or 'nowhere'})"
            )
            for warning in found.warnings:
                render.say(f"warning: {warning}", markup=False)
            for problem in found.problems:
                render.error(problem)
    if not ok:
        raise typer.Exit(EXIT_FAILURE)


@audit_app.command("witness")
def audit_witness(json_: Json = False) -> None:
    """Sign the audit chain's head now and append it to the witness file and Redis stream (the
    bridge does it every minute while the head moves)."""
    import redis

    from lake_client import witness

    settings = load_settings()
    client = _witness_redis()
    try:
        w = witness.Witness.from_settings(settings, client)
        with _lake() as lake:
            lake.verify_audit_chain()  # seals what has committed first
            done = w.witness_head(lake.conn)
            lake.conn.commit()
    except redis.RedisError as exc:
        render.error(f"the witness went to {w.folder}, not to Redis: {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    finally:
        if client is not None:
            client.close()
    if json_:
        render.json_doc(done)
    elif done is None:
        render.say("the audit chain is empty: nothing to witness")
    else:
        render.say(f"witnessed entry {done['id']} ({done['hash'][:16]}...) in {w.folder}")


@audit_app.command("tail")
def audit_tail(
    limit: Annotated[int, typer.Option(min=1, help="How many entries.")] = 20,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. auth.failure.")] = None,
    json_: Json = False,
) -> None:
    """Show the newest audit entries."""
    with _lake() as lake:
        rows = list(reversed(lake.audit_log(limit, action)))
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("id", "at", "action", "object", "role", "user", "service", "detail"),
        [
            (
                r["id"],
                r["at"],
                r["action"],
                r["object"],
                r["db_role"],
                r["lake_user"],
                r["service"],
                _cut(json.dumps(r["detail"]), 60),
            )
            for r in rows
        ],
    )


def _cut(text: str, width: int) -> str:
    """Short at a terminal; whole in a pipe or a file."""
    return text[:width] if render.console.is_terminal else text


# -- jobs -------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(json_: Json = False) -> None:
    """Show every job: schedule, whether pg_cron has it, and how its last run went."""
    with _lake() as lake:
        rows = lake.jobs()
    if json_:
        render.json_doc(rows)
        return
    render.table(
        ("job", "schedule", "in pg_cron", "last run", "status", "failed 24 h", "error"),
        [
            (
                r["job"],
                r["schedule"],
                "yes" if r["scheduled"] else "no",
                r["last_start"],
                r["last_status"],
                r["failures_24h"],
                _cut(r["last_error"] or "", 60),
            )
            for r in rows
        ],
    )
    if rows and not any(r["scheduled"] for r in rows):
        render.say(
            "pg_cron has none of them in this database: it lives in the database named by "
            "cron.database_name, and `lake migrate` schedules the jobs there."
        )


@jobs_app.command("runs")
def jobs_runs(
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    json_: Json = False,
) -> None:
    """Show the latest runs recorded by lake.run_maintenance, with what each did."""
    with _lake() as lake:
        rows = list(reversed(lake.job_runs(job, limit)))
    if json_:
        render.json_doc(rows)
        return
    out = []
    for r in rows:
        took = (
            ""
            if r["finished_at"] is None
            else f"{(r['finished_at'] - r['started_at']).total_seconds():.2f} s"
        )
        details = r["error"] or json.dumps(r["details"])
        out.append((r["id"], r["job"], r["started_at"], took, r["status"], _cut(details, 80)))
    render.table(("run", "job", "started", "took", "status", "details / error"), out)


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
    json_: Json = False,
) -> None:
    """Run a job (or all of them) now, as pg_cron would: `CALL lake.run_maintenance(...)`, or
    the statement itself for vacuum and reindex."""
    with _lake() as lake:
        lake.run_job(job, now)
        rows = lake.job_runs(job, 1) if job else []
    run = rows[0] if job and rows and rows[0]["job"] == job else None
    if json_:
        render.json_doc({"job": job, "run": run})
    elif run is not None:
        render.say(f"{job}: {run['status']} (run {run['id']})")
        render.say(
            json.dumps(run["details"]) if run["error"] is None else run["error"], markup=False
        )
    else:
        render.say(f"{job or 'every job'}: done; `lake jobs list` shows how each went")


# -- change capture ----------------------------------------------------------------------------


def _bridge_name(value: str) -> str:
    # The rule lives in bridge.valid_name (mirroring lake.bridge_cursors' check constraint).
    try:
        return lake_bridge.valid_name(value)
    except LakeError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


@app.command(
    epilog=_examples(
        "lake bridge",
        "lake bridge --name replica-2 --stream lake:changes --stream-maxlen 100000",
        "LAKE_REDIS_URL=redis://:pw@node1:7000/0 lake bridge --cluster",
    )
)
def bridge(
    name: Annotated[
        str,
        typer.Option(
            help="The bridge's name: its cursor in lake.bridge_cursors (1 to 64 letters, digits,"
            " '_', '.' or '-').",
            callback=_bridge_name,
        ),
    ] = lake_bridge.NAME,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Changes per Redis pipeline.")
    ] = lake_bridge.BATCH_SIZE,
    poll: Annotated[
        float, typer.Option(min=0.01, help="Seconds between looks without a NOTIFY.")
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
    witness: Annotated[
        bool,
        typer.Option(
            help="Sign the audit chain's head every minute while it moves, into the witness file"
            " and the Redis stream lake:audit-witness (lake_client.witness; `lake audit verify`"
            " compares the chain with them).",
        ),
    ] = True,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            envvar="LAKE_REDIS_CLUSTER",
            help="Redis is a Redis Cluster: LAKE_REDIS_URL names any one of its nodes and the"
            " bridge finds the others (redis.cluster.RedisCluster instead of redis.Redis). On"
            " by itself for the local cluster of `lake up --redis-cluster`.",
        ),
    ] = False,
    amqp: Annotated[
        str | None,
        typer.Option(
            envvar="LAKE_AMQP_URL",
            help="Publish the changes to RabbitMQ instead (lake_client.amqp): exchange"
            " lake.changes, routing key <dataset>.<op>, with publisher confirms; 'embedded' for"
            " the broker of `lake up --with rabbitmq`. Its cursor's --name defaults to amqp.",
        ),
    ] = None,
) -> None:
    """Forward committed changes (lake.data_changes) to Redis until interrupted: invalidate the
    cache, publish on cache.invalidate / cache.update, append to the stream lake:changes; and
    witness the audit chain's head."""
    from lake_client.witness import Witness

    settings = load_settings()
    if amqp is not None:
        _amqp_bridge(settings, amqp, name, batch_size, poll)
        return
    redis_url = settings.redis_url()
    where = redis_url.split("@")[-1].split("?")[0]  # no password, no options

    def started(b: lake_bridge.Bridge) -> None:
        render.say(
            f"bridge {b.name}: lake.data_changes -> {where} (Ctrl-C stops)",
            markup=False,
        )

    b = lake_bridge.run_forever(
        settings.dsn(),
        redis_url,
        cluster=cluster or settings.redis_cluster,
        name=name,
        batch_size=batch_size,
        poll_s=poll,
        stream=stream,
        stream_maxlen=stream_maxlen,
        cache_prefix=prefix,
        on_start=started,
        witness=(lambda client: Witness.from_settings(settings, client)) if witness else None,
    )
    if b is None:  # stopped while waiting for the Redis Cluster
        raise typer.Exit(1)
    render.say(f"bridge {name} stopped at change {b.cursor}")


def _amqp_bridge(settings: Settings, url: str, name: str, batch_size: int, poll: float) -> None:
    """`lake bridge --amqp URL`: the RabbitMQ publisher, until interrupted."""
    from lake_client import amqp
    from lake_client.local import rabbitmq

    if url == "embedded":
        try:
            url = rabbitmq.url(settings)
        except OSError as exc:  # no password: never started
            raise ClusterError(
                "the embedded RabbitMQ has not been started", hint="run `lake up --with rabbitmq`"
            ) from exc
    name = amqp.NAME if name == lake_bridge.NAME else name
    where = url.rsplit("@", 1)[-1]

    def started(b: amqp.AmqpBridge) -> None:
        render.say(f"bridge {b.name}: lake.data_changes -> {where} (Ctrl-C stops)", markup=False)

    b = amqp.run_forever(
        settings.dsn(), url, name=name, batch_size=batch_size, poll_s=poll, on_start=started
    )
    render.say(f"bridge {b.name} stopped at change {b.cursor}")


# -- health and metrics -------------------------------------------------------------------------


@app.command(
    epilog=_examples(
        "lake serve",
        "lake serve --host 0.0.0.0 --port 9478   # for Prometheus in another container",
        "curl -s --cacert $LAKE_HOME/tls/ca.crt https://localhost:9478/health/ready",
    )
)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 9478,
) -> None:
    """Serve /health/live, /health/ready (PostgreSQL within 2 s, Redis within 1 s) and
    Prometheus /metrics (jobs, quarantine, batches, partitions) over HTTPS (TLS 1.3, the lake's
    `http` certificate in LAKE_HOME/tls, taken again when renewed) until interrupted."""
    import threading
    import time

    from lake_client.local.tls import door_files
    from lake_client.server import make_server

    settings = load_settings()
    files = door_files(settings.home, "http", lambda m: render.say(m, markup=False))
    server = make_server(host, port, settings.dsn(), settings.redis_url(), files)

    def keep_certificates_current() -> None:
        while True:  # renewed redis.crt, rabbitmq.crt: the servers read them again
            local.reload_tls(settings)
            time.sleep(60)

    threading.Thread(target=keep_certificates_current, daemon=True).start()
    logging.getLogger("lake.serve").info(
        "serving https://%s:%d/health/ready, /metrics and /status", host, server.server_port
    )
    render.say(
        f"serving https://{host}:{server.server_port}/health/ready, /metrics and /status"
        f" (CA: {settings.ca_file}; Ctrl-C stops)",
        markup=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- gRPC ---------------------------------------------------------------------------------------


@app.command(
    epilog=_examples(
        "lake grpc --dsn 'host=… user=gateway dbname=lake'",
        "lake grpc --dsn '…' --admin-dsn '… user=lake_ops' --admin ops-service",
        "grpcurl -cacert $LAKE_HOME/tls/ca.crt 127.0.0.1:50051 list",
    )
)
def grpc(
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve plaintext instead of TLS 1.3 (an explicit opt-out: keep it on loopback).",
        ),
    ] = False,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="Require client certificates signed by this CA (mTLS for a gateway; the "
            "lake's own: LAKE_HOME/tls/ca.crt): each call is the service of its certificate "
            "(lake.service_certs; the --dsn login must be a member of lake_door).",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 50051,
    dsn: Annotated[
        str | None,
        typer.Option(help="The service's login: a role of lake_service. Default: the lake's."),
    ] = None,
    admin_dsn: Annotated[
        str | None,
        typer.Option(help="A lake_admin login for the administrator methods (off without)."),
    ] = None,
    read_dsn: Annotated[
        str | None,
        typer.Option(
            help="Where Query reads: a hot standby, as the --dsn login (default: LAKE_READ_DSN"
            " when --dsn is not given either). The caller's identity goes there as a token the"
            " primary signs.",
        ),
    ] = None,
    admin: Annotated[
        list[str] | None,
        typer.Option(help="A principal (key or certificate) that may call administrator methods."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Calls served at once.")] = 8,
    max_seconds: Annotated[
        float, typer.Option(min=0.1, help="Longest a call's statements may run.")
    ] = 30.0,
) -> None:
    """Serve the lake's gRPC service (datapunk.lake.v1.Lake) with grpc.health.v1 and server
    reflection until interrupted, over TLS 1.3 with the lake's `grpc` certificate (taken again
    when renewed). Each call runs with the identity of its service certificate (--client-ca) or
    of its API key (`authorization` metadata); a service names the user it acts for in
    `x-lake-user`."""
    from lake_client.grpc_server import make_server
    from lake_client.local.tls import door_files

    settings = load_settings()
    if insecure and client_ca is not None:
        raise typer.BadParameter("--client-ca needs TLS: drop --insecure")
    files = (
        None
        if insecure
        else door_files(settings.home, "grpc", lambda m: render.say(m, markup=False))
    )
    server, bound, service = make_server(
        dsn or settings.dsn(),
        host=host,
        port=port,
        tls=files,
        client_ca=client_ca,
        insecure=insecure,
        admin_dsn=admin_dsn,
        admins=frozenset(admin or ()),
        redis_url=settings.redis_url(),
        workers=workers,
        max_seconds=max_seconds,
        read_dsn=read_dsn or (None if dsn else settings.read_dsn),
    )
    how = "plaintext" if insecure else f"TLS 1.3{', mTLS' if client_ca else ''}"
    logging.getLogger("lake.grpc").info("serving gRPC (%s) on %s:%d", how, host, bound)
    render.say(f"serving gRPC ({how}) on {host}:{bound} (Ctrl-C stops)", markup=False)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(5).wait()
        service.close()


# -- demo -------------------------------------------------------------------------------------


@app.command(epilog=_examples("lake demo", "lake demo --records 1000000"))
def demo(
    records: Annotated[
        int, typer.Option(min=1, help="How many location records to generate.")
    ] = 100_000,
) -> None:
    """Start the lake, create a location-history dataset, ingest generated records (a few
    percent invalid in realistic ways) and show what happened."""
    from lake_client.demo import run_demo

    run_demo(records)


def main() -> None:
    app()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
