"""The health and metrics server (`lake serve`), over HTTPS only (TLS 1.3, the lake's ``http``
certificate; a renewed certificate is taken at the next connection: lake_client.transport).

``GET /health/live``   200 while the process serves requests (it checks nothing else).
``GET /health/ready``  200 when PostgreSQL answers within 2 s and Redis within 1 s; 503 otherwise,
                       with what failed. JSON either way.
``GET /status``        the status page (also ``/``): lake_client/status_page.py.
``GET /metrics``       Prometheus text format: the specification's data_quality_score,
                       storage_usage_bytes, data_processing_duration_seconds and
                       storage_latency_seconds; the lake's jobs (last outcome, runs by outcome),
                       the quarantine by status, batch totals and partitions by tier, the bridges'
                       lag, the sealer's backlog, the notification queue's usage, cache hit
                       ratios, WAL written, the audit chain's state, build info and the newest
                       backup (pgBackRest), read from
                       the database (and Redis) at scrape time;
                       ``lake_database_up`` is 0 when it cannot be read.

Figures born in the database are recorded there (an operation's duration by the function that did
it, lake_internal._record_duration) and only read here, so they are true whichever client did the
work. README "Metrics" defines each.

Each request is a span (``GET <path>``, lake_client.telemetry) that continues the caller's trace
when its ``traceparent`` header names one; answers of 500 and more are logged as warnings.

The metrics are read with the lake's own views (``lake.jobs``, ``lake.partitions``) and tables,
so the server connects as an administrator (the embedded cluster's superuser by default, or a
login in ``lake_admin`` through ``LAKE_DSN``). It keeps no state: each scrape opens one short
connection, which is all a scrape every 15 s or so needs.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from lake_client import __version__, status_page
from lake_client.config import lake_home
from lake_client.queries import sql
from lake_client.telemetry import tracer
from lake_client.transport import ServerContext, ServerFiles

PG_TIMEOUT_S = 2
HANDSHAKE_TIMEOUT_S = 10  # a client that connects and says nothing holds a thread this long
REDIS_TIMEOUT_S = 1
# lake_notification_queue_usage alerts at this fraction. A listener that sits idle inside an open
# transaction holds back the queue's tail; at 1.0 every NOTIFY (each commit of a writer while the
# bridge waits, each seal) fails. Half full leaves time to find that session (pg_stat_activity:
# state 'idle in transaction', a LISTEN) and end it.
NOTIFY_QUEUE_ALERT = 0.5

log = logging.getLogger("lake.serve")


def _connect(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        dsn,
        connect_timeout=PG_TIMEOUT_S,
        options=f"-c statement_timeout={PG_TIMEOUT_S * 1000}",
        application_name="lake-serve",
        autocommit=True,
    )


def check_postgres(dsn: str) -> str | None:
    """None when PostgreSQL answers within the timeout, else what went wrong."""
    try:
        with _connect(dsn) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        # A highly available lake's DSN asks for the writable node (target_session_attrs):
        # every node read-only is a lake without a primary (e.g. while its store is gone).
        if "read-only" in text or "hot standby" in text:
            return f"no primary (no server accepts writes): {first}"
        return first
    return None


def check_redis(url: str) -> str | None:
    """None when Redis answers PING within the timeout, else what went wrong."""
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    except ValueError as exc:  # redis-py's word for a URL it cannot read
        return f"invalid Redis URL: {exc}"
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc) or type(exc).__name__
    finally:
        client.close()
    return None


class LakeCollector(Collector):
    """Reads the lake's state at each scrape."""

    def __init__(
        self, dsn: str, redis_url: str | None = None, tls_folder: Path | None = None
    ) -> None:
        self.dsn = dsn
        self.redis_url = redis_url
        self.tls_folder = tls_folder

    def collect(self) -> Iterator[Metric]:
        yield self._certificate_family()
        up = GaugeMetricFamily("lake_database_up", "1 when the lake's database could be read")
        try:
            with _connect(self.dsn) as conn:
                families = list(self._families(conn))
        except psycopg.Error:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _certificate_family(self) -> Metric:
        """When each certificate in LAKE_HOME/tls expires (read from the files, as the status
        page does): the alert rule certificate_expiring watches it."""
        expiry = GaugeMetricFamily(
            "lake_tls_certificate_expiry_timestamp_seconds",
            "when the certificate expires (the files in LAKE_HOME/tls: the CA, the servers')",
            labels=["certificate"],
        )
        folder = self.tls_folder if self.tls_folder is not None else lake_home() / "tls"
        for cert in status_page.read_certificates(folder):
            if "not_after" in cert:
                expiry.add_metric([Path(str(cert["file"])).stem], cert["not_after"].timestamp())
        return expiry

    def _redis_figures(self) -> dict[str, float]:
        """Redis' memory, its cache hits and a measured write and read (empty when down)."""
        if self.redis_url is None:
            return {}
        client = redis.Redis.from_url(
            self.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        try:
            t0 = time.perf_counter()
            client.set("lake:latency-probe", "1", ex=60)
            t1 = time.perf_counter()
            client.get("lake:latency-probe")
            t2 = time.perf_counter()
            info = client.info()
        except redis.RedisError:
            return {}
        finally:
            client.close()
        figures = {"used_memory": float(info["used_memory"]), "write": t1 - t0, "read": t2 - t1}
        lookups = int(info.get("keyspace_hits", 0)) + int(info.get("keyspace_misses", 0))
        if lookups:
            figures["hit_ratio"] = int(info["keyspace_hits"]) / lookups
        return figures

    def _families(self, conn: psycopg.Connection[tuple[Any, ...]]) -> Iterable[Metric]:
        ok = GaugeMetricFamily(
            "lake_job_last_run_ok",
            "1 when the job's last run succeeded, 0 when it failed (absent: never ran)",
            labels=["job"],
        )
        failures = GaugeMetricFamily(
            "lake_job_failures_24h", "failed runs of the job in the last 24 hours", labels=["job"]
        )
        last = GaugeMetricFamily(
            "lake_job_last_run_timestamp_seconds", "when the job last started", labels=["job"]
        )
        scheduled = GaugeMetricFamily(
            "lake_job_scheduled", "1 when pg_cron has the job in this database", labels=["job"]
        )
        for job, is_scheduled, status, started, failed in conn.execute(sql("metrics_jobs")):
            scheduled.add_metric([job], int(bool(is_scheduled)))
            failures.add_metric([job], failed)
            if status in ("ok", "failed", "succeeded"):
                ok.add_metric([job], int(status != "failed"))
            if started is not None:
                last.add_metric([job], started)
        yield from (ok, failures, last, scheduled)

        quarantine = GaugeMetricFamily(
            "lake_quarantine_items", "quarantined records by status", labels=["dataset", "status"]
        )
        for dataset, status, n in conn.execute(sql("metrics_quarantine")):
            quarantine.add_metric([dataset, status], n)
        yield quarantine

        counters = {
            name: CounterMetricFamily(
                f"lake_records_{name}", f"records {name} by ingest batches", labels=["dataset"]
            )
            for name in ("received", "accepted", "archived", "quarantined")
        }
        for dataset, *counts in conn.execute(sql("metrics_batches")):
            for name, n in zip(counters, counts, strict=True):
                counters[name].add_metric([dataset], n)
        yield from counters.values()

        parts = GaugeMetricFamily(
            "lake_partitions", "partitions by age tier", labels=["dataset", "tier"]
        )
        size = GaugeMetricFamily(
            "lake_partition_bytes", "bytes of the partitions by tier", labels=["dataset", "tier"]
        )
        for dataset, tier, n, nbytes in conn.execute(sql("metrics_partitions")):
            parts.add_metric([dataset, tier], n)
            size.add_metric([dataset, tier], nbytes)
        yield from (parts, size)

        lag = GaugeMetricFamily(
            "lake_bridge_lag_changes",
            "committed changes the bridge has not yet forwarded to Redis",
            labels=["bridge"],
        )
        lag_s = GaugeMetricFamily(
            "lake_bridge_lag_seconds",
            "age of the oldest change the bridge has not yet forwarded (0 when none)",
            labels=["bridge"],
        )
        advanced = GaugeMetricFamily(
            "lake_bridge_last_advance_timestamp_seconds",
            "when the bridge last moved its cursor",
            labels=["bridge"],
        )
        for name, behind, age, at in conn.execute(sql("metrics_bridges")):
            lag.add_metric([name], behind)
            lag_s.add_metric([name], age)
            advanced.add_metric([name], at)
        yield from (lag, lag_s, advanced)

        pending = GaugeMetricFamily(
            "lake_seal_pending",
            "committed audit entries and changes waiting for the sealer (lake.seal())",
            labels=["log"],
        )
        pending_s = GaugeMetricFamily(
            "lake_seal_pending_age_seconds",
            "age of the oldest of them (0 when none): the sealer's delay",
            labels=["log"],
        )
        for log, n, age in conn.execute(sql("metrics_seal")):
            pending.add_metric([log], n)
            pending_s.add_metric([log], age)
        yield from (pending, pending_s)

        queue = GaugeMetricFamily(
            "lake_notification_queue_usage",
            "fraction of PostgreSQL's NOTIFY queue in use (pg_notification_queue_usage());"
            f" alert at {NOTIFY_QUEUE_ALERT}: a listener idle in an open transaction holds it,"
            " and when full every NOTIFY fails",
        )
        for (usage,) in conn.execute(sql("metrics_notify_queue")):
            queue.add_metric([], usage)
        yield queue
        redis_figures = self._redis_figures()
        yield from self._spec_families(conn, redis_figures)
        yield from self._maintenance_families(conn, redis_figures)

    def _spec_families(
        self, conn: psycopg.Connection[tuple[Any, ...]], rds: dict[str, float]
    ) -> Iterable[Metric]:
        """The specification's four: quality, storage, processing durations, latency."""
        quality = GaugeMetricFamily(
            "data_quality_score",
            "1 - share of records received that failed a check of the kind (lake.quality_scores)",
            labels=["table", "check_type", "window"],
        )
        for dataset, check_type, window, score in conn.execute(sql("metrics_quality")):
            quality.add_metric([dataset, check_type, window], score)
        yield quality

        usage = GaugeMetricFamily(
            "storage_usage_bytes", "bytes held, by storage", labels=["storage_type", "schema"]
        )
        for storage_type, schema, nbytes in conn.execute(sql("metrics_storage")):
            usage.add_metric([storage_type, schema], nbytes)
        wal_written = None
        try:
            for wal_files, written in conn.execute(sql("metrics_wal")):
                usage.add_metric(["wal", ""], wal_files)
                wal_written = written
        except psycopg.errors.InsufficientPrivilege:
            pass  # a login without pg_monitor: no WAL figures
        if "used_memory" in rds:
            usage.add_metric(["redis", ""], rds["used_memory"])
        yield usage
        if wal_written is not None:
            wal = CounterMetricFamily(
                "lake_wal_written_bytes", "WAL bytes PostgreSQL wrote since its statistics reset"
            )
            wal.add_metric([], wal_written)
            yield wal

        durations = HistogramMetricFamily(
            "data_processing_duration_seconds",
            "how long the lake's operations took, recorded by the functions that did them",
            labels=["operation", "status"],
        )
        for operation, status, bounds, buckets, count, total in conn.execute(
            sql("metrics_durations")
        ):
            points = [(_le(b), float(n)) for b, n in zip(bounds, buckets, strict=True)]
            durations.add_metric(
                [operation, status], [*points, ("+Inf", float(count))], sum_value=total
            )
        yield durations

        latency = GaugeMetricFamily(
            "storage_latency_seconds",
            "a measured write and read, per storage tier",
            labels=["tier", "operation"],
        )
        for tier, operation, seconds in conn.execute(sql("metrics_latency")):
            latency.add_metric([tier, operation], seconds)
        for operation in ("write", "read"):
            if operation in rds:
                latency.add_metric(["redis", operation], rds[operation])
        yield latency

    def _maintenance_families(
        self, conn: psycopg.Connection[tuple[Any, ...]], rds: dict[str, float]
    ) -> Iterable[Metric]:
        """Cache hits, job outcomes as counters, the audit chain, build info."""
        ratio = GaugeMetricFamily(
            "lake_cache_hit_ratio", "hits / lookups since the cache started", labels=["cache"]
        )
        for (hit,) in conn.execute(sql("metrics_cache_hits")):
            if hit is not None:
                ratio.add_metric(["postgres"], hit)
        if "hit_ratio" in rds:
            ratio.add_metric(["redis"], rds["hit_ratio"])
        yield ratio

        runs = CounterMetricFamily(
            "lake_job_runs",
            "runs of the job by outcome since the lake began",
            labels=["job", "status"],
        )
        for job, status, n in conn.execute(sql("metrics_job_outcomes")):
            runs.add_metric([job, status], n)
        yield runs

        chain = GaugeMetricFamily(
            "lake_audit_chain_ok",
            "1 when the verify_audit job last found the audit chain whole",
        )
        verified = GaugeMetricFamily(
            "lake_audit_chain_verified_timestamp_seconds",
            "when the verify_audit job last checked the audit chain",
        )
        for ok, at in conn.execute(sql("metrics_audit_chain")):
            chain.add_metric([], int(bool(ok)))
            verified.add_metric([], at)
        yield chain
        yield verified

        build = InfoMetricFamily("lake_build", "the lake's versions")
        for (server_version,) in conn.execute(sql("metrics_build")):
            build.add_metric([], {"version": __version__, "postgres_version": server_version})
        yield build
        yield from _backup_families(conn)


def _backup_families(conn: psycopg.Connection[tuple[Any, ...]]) -> Iterable[Metric]:
    """The newest backup and the repository's count (lake.backups() asks pgBackRest). The
    families are always there; they have no sample while there is nothing to say (no pgBackRest,
    a repository it cannot read, no backup yet)."""
    count = GaugeMetricFamily("lake_backups", "backups in the pgBackRest repository")
    when = GaugeMetricFamily(
        "lake_backup_last_success_timestamp_seconds", "when the newest backup finished"
    )
    stored = GaugeMetricFamily(
        "lake_backup_last_size_bytes", "bytes the newest backup added to the repository"
    )
    try:
        rows = conn.execute(sql("metrics_backups")).fetchall()
    except psycopg.Error:
        rows = []
    for last, size, n in rows:
        count.add_metric([], n)
        if last is not None:
            when.add_metric([], last)
            stored.add_metric([], size)
    yield from (count, when, stored)


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (0.5, 1.0, 3600.0)."""
    return repr(float(bound))


class HttpsServer(ThreadingHTTPServer):
    """A threading HTTP server that speaks TLS 1.3 only. The handshake runs in the connection's
    own thread (a slow client holds no one else up); a client that fails it (plaintext, TLS 1.2,
    one that does not trust the lake's CA) is dropped with a line on stderr."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ServerFiles,
    ) -> None:
        self.tls = ServerContext(tls)  # before binding: a missing certificate says so first
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        wrapped = self.tls.get().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(HANDSHAKE_TIMEOUT_S)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            print(
                f"lake serve: TLS handshake with {client_address[0]} failed: {exc}", file=sys.stderr
            )
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # the client left (a scrape timed out)
            print(f"lake serve: {client_address[0]} left: {sys.exc_info()[1]}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)


def make_server(
    host: str,
    port: int,
    dsn: str,
    redis_url: str,
    tls: ServerFiles,
) -> HttpsServer:
    """An HTTPS server (not yet serving: call serve_forever) for the three endpoints, with the
    certificate and key of ``tls``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LakeCollector(dsn, redis_url))

    class Handler(BaseHTTPRequestHandler):
        server_version = "datapunk-lake"
        status = 0

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            # A span per request, in the caller's trace when its traceparent header names one.
            with tracer.start_as_current_span(
                f"GET {path}",
                context=propagate.extract(self.headers),
                kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": "GET", "url.path": path},
            ) as span:
                self._answer(path)
                span.set_attribute("http.response.status_code", self.status)
                if self.status >= 500:
                    span.set_status(trace.StatusCode.ERROR)

        def _answer(self, path: str) -> None:
            if path == "/health/live":
                self._json(200, {"status": "ok"})
            elif path == "/health/ready":
                problems = {
                    name: problem
                    for name, problem in (
                        ("postgres", check_postgres(dsn)),
                        ("redis", check_redis(redis_url)),
                    )
                    if problem is not None
                }
                body = {
                    "status": "fail" if problems else "ok",
                    **dict.fromkeys(("postgres", "redis"), "ok"),
                    **problems,
                }
                self._json(503 if problems else 200, body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in ("/", "/status"):
                code, page = status_page.page(dsn)
                self._send(code, "text/html; charset=utf-8", page)
            else:
                self._json(
                    404,
                    {
                        "error": "not found",
                        "paths": ["/health/live", "/health/ready", "/metrics", "/status"],
                    },
                )

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(body).encode())

        def _send(self, code: int, content_type: str, payload: bytes) -> None:
            self.status = code
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would flood the log; log_request tells failures

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if isinstance(code, int) and code >= 500:
                log.warning("%s %s: %d", self.command, self.path, code)

    return HttpsServer((host, port), Handler, tls)
