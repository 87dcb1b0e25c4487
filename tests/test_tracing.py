"""Tracing and logs: the spans of an ingest and of `lake serve` requests, the trace id in
PostgreSQL's JSON log of the statements a span caused, and the JSON logs of the Python processes.

The spans go to the SDK's own in-memory exporter (opentelemetry.sdk...InMemorySpanExporter), in
this process: no OTLP receiver is reachable here. Everything else is real: PostgreSQL writes its
log, `lake serve` runs as a process of its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lake_client import local, telemetry
from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.grpc_client import GrpcLake
from lake_client.grpc_server import make_server as grpc_server
from lake_client.local.tls import door_files
from lake_client.server import make_server
from lake_client.transport import client_context
from tests.conftest import SERVICE_ROLE, point
from tests.test_grpc import new_key

Conn = psycopg.Connection[tuple[object, ...]]
LAKE = str(Path(sys.executable).with_name("lake"))


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    """The SDK installed once for the test process, keeping every span (always_on, through
    OTEL_TRACES_SAMPLER as a deployment would set it) in memory."""
    memory = InMemorySpanExporter()
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    try:
        installed = telemetry.setup_tracing("test", memory)
    finally:
        del os.environ["OTEL_TRACES_SAMPLER"]
    assert installed
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def logged_db(conn: Conn, settings: Settings) -> str:
    """The test database's name, its sessions logging every statement (log_min_duration_statement
    0, set for this database only) into the embedded cluster's JSON log."""
    if not settings.embedded:
        pytest.skip("reads the server's log files: needs the embedded cluster")
    name = conn.info.dbname
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET log_min_duration_statement = 0").format(sql.Identifier(name))
    )
    return name


def pg_log_lines(settings: Settings, database: str, needle: str) -> list[dict[str, Any]]:
    """The JSON log lines of `database` whose message holds `needle`, waiting up to 20 s for
    the first (PostgreSQL's logging collector writes them a moment after the statement)."""
    folder = local.Paths(settings.home).log
    deadline = time.monotonic() + 20
    while True:
        found = []
        for path in folder.glob("postgresql-*.json"):
            for line in path.read_text(errors="replace").splitlines():
                if needle in line:
                    entry = json.loads(line)
                    if entry.get("dbname") == database and needle in entry.get("message", ""):
                        found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def traceparent(span: ReadableSpan) -> str:
    """The span's W3C traceparent (its flags: sampled, and the SDK's random trace id bit)."""
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_ingest_is_one_trace_and_its_copies_are_in_postgres_log(
    lake: Lake,
    location_dataset: str,
    logged_db: str,
    settings: Settings,
    spans: InMemorySpanExporter,
    jobs: int,
) -> None:
    records = [point(i + 1) for i in range(24)]
    records[5] = point(6, lat=500)  # quarantined: the span says so
    lake.act_as("alice")
    summary = lake.ingest(location_dataset, records, batch_size=10, jobs=jobs)
    assert summary.accepted == 23 and summary.quarantined == 1

    finished = spans.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == ["lake.copy", "lake.ingest", "lake.ingest.batch"]
    (root,) = by_name["lake.ingest"]
    batches, copies = by_name["lake.ingest.batch"], by_name["lake.copy"]
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["lake.records.received"] == 24
    assert root.attributes["lake.records.quarantined"] == 1
    assert root.attributes["lake.jobs"] == jobs
    # One batch span per batch, each the load's child (also from the worker threads), and one
    # COPY span in each batch.
    assert len(batches) == 3 and len(copies) == 3
    root_ctx = root.get_span_context()
    assert root_ctx is not None
    assert {parent_id(b) for b in batches} == {root_ctx.span_id}
    batch_ids = {b.context.span_id for b in batches if b.context is not None}
    assert sorted(parent_id(c) for c in copies) == sorted(batch_ids)
    assert {s.context.trace_id for s in finished if s.context is not None} == {root_ctx.trace_id}
    assert sorted(b.attributes["lake.records"] for b in batches if b.attributes) == [4, 10, 10]

    # Each COPY's line in PostgreSQL's log carries its span's traceparent.
    for copy in copies:
        lines = pg_log_lines(settings, logged_db, f"traceparent='{traceparent(copy)}'")
        assert lines, f"no log line of the COPY of span {copy.context}"
        assert any("statement: COPY" in line["message"] for line in lines), lines


def test_serve_continues_the_callers_trace(
    db: str, logged_db: str, settings: Settings, spans: InMemorySpanExporter
) -> None:
    server = make_server(
        "127.0.0.1", 0, db, settings.redis_url(), door_files(settings.home, "http", print)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    request = urllib.request.Request(
        f"https://127.0.0.1:{server.server_port}/metrics",
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    try:
        context = client_context(settings.ca_file)
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()

    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /metrics"]
    assert span.kind == trace.SpanKind.SERVER
    assert hex_ids(span)[0] == trace_id
    assert span.parent is not None and span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == caller_span
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 200
    # The statements of the scrape name the request's span in PostgreSQL's log.
    assert pg_log_lines(settings, logged_db, f"traceparent='{traceparent(span)}'")


def test_a_grpc_ingest_continues_the_callers_trace(
    db: str, conn: Conn, location_dataset: str, settings: Settings, spans: InMemorySpanExporter
) -> None:
    """GrpcLake sends the caller's traceparent as metadata; `lake grpc`'s call span continues
    it, and the batches it stores are the call's children."""
    conn.execute("SELECT lake.create_user('alice')")
    key = new_key(conn, "alice")
    server, port, service = grpc_server(
        make_conninfo(db, user=SERVICE_ROLE), insecure=True, redis_url=settings.redis_url()
    )
    try:
        with (
            telemetry.tracer.start_as_current_span("caller") as caller,
            GrpcLake(f"127.0.0.1:{port}", key[1], insecure=True) as client,
        ):
            summary = client.ingest(location_dataset, [point(i + 1) for i in range(5)])
    finally:
        server.stop(None).wait()
        service.close()
    assert summary.accepted == 5

    finished = {s.name: s for s in spans.get_finished_spans()}
    call = finished["/datapunk.lake.v1.Lake/Ingest"]
    batch, copy = finished["lake.ingest.batch"], finished["lake.copy"]
    assert call.kind == trace.SpanKind.SERVER
    assert parent_id(call) == caller.get_span_context().span_id
    assert call.parent is not None and call.parent.is_remote
    assert call.context is not None and batch.context is not None
    assert parent_id(batch) == call.context.span_id
    assert parent_id(copy) == batch.context.span_id
    assert {hex_ids(s)[0] for s in (call, batch, copy)} == {
        f"{caller.get_span_context().trace_id:032x}"
    }


def test_no_span_no_comment(spans: InMemorySpanExporter) -> None:
    """Outside a sampled span the statements' text stays as written."""
    from lake_client.queries import sql as named

    assert telemetry.sql_comment() == ""
    assert "traceparent" not in named("session_setup")
    with telemetry.tracer.start_as_current_span("outer"):
        assert named("session_setup").endswith("*/")
        assert telemetry.traceparent() in named("session_setup")


@pytest.mark.fast
def test_the_default_sampler_is_parent_based_one_in_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    chosen = telemetry.sampler()
    assert chosen is not None
    assert chosen.get_description() == (
        "ParentBased{root:TraceIdRatioBased{0.1},remoteParentSampled:AlwaysOnSampler,"
        "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
        "localParentNotSampled:AlwaysOffSampler}"
    )
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert telemetry.sampler() is None  # the SDK reads the variable itself


@pytest.mark.fast
def test_json_logs_turn_over_daily_and_keep_30_days(tmp_path: Path) -> None:
    handler = telemetry.json_file_handler(tmp_path, "x")
    assert isinstance(handler, logging.handlers.TimedRotatingFileHandler)
    for day in range(1, 36):  # 35 earlier days, and a file of another process
        (tmp_path / f"lake-x.2026-10-{day:02d}.json").write_text("{}\n")
    (tmp_path / "postgresql-07.json").write_text("{}\n")
    logger = logging.getLogger("test.rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("before midnight")
        handler.doRollover()
        logger.warning("after midnight")
    finally:
        logger.removeHandler(handler)
        handler.close()
    dated = sorted(p.name for p in tmp_path.glob("lake-x.*.json"))
    assert len(dated) == 30
    assert dated[-1] > "lake-x.2026-10-35.json"  # the day just closed is among them
    assert (tmp_path / "postgresql-07.json").exists()
    (line,) = (tmp_path / "lake-x.json").read_text().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "after midnight" and entry["error_severity"] == "WARNING"


def test_lake_serve_logs_json_lines(db: str, settings: Settings, tmp_path: Path) -> None:
    """A real `lake serve` process: its start at INFO, and a failed readiness check at WARNING
    with the caller's trace id, as JSON lines in LAKE_HOME/log/lake-serve.json."""
    env = {
        **os.environ,
        "LAKE_HOME": str(tmp_path),
        "LAKE_DSN": db,
        "LAKE_REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens: readiness fails
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proc = subprocess.Popen(
        [LAKE, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        # (the first lines may tell of the CA and certificate made for this LAKE_HOME)
        said: list[str] = []
        port = None
        while port is None and len(said) < 5:
            said.append(proc.stdout.readline())
            port = re.search(r"https://.*:(\d+)/health", said[-1])
        assert port, said
        trace_id = secrets.token_hex(16)
        request = urllib.request.Request(
            f"https://127.0.0.1:{port.group(1)}/health/ready",
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(
                request, timeout=30, context=client_context(tmp_path / "tls" / "ca.crt")
            )
        assert failed.value.code == 503
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    lines = [json.loads(x) for x in (tmp_path / "log" / "lake-serve.json").read_text().splitlines()]
    started = lines[0]
    assert started["error_severity"] == "INFO"
    assert started["message"].startswith("serving https://127.0.0.1:")
    assert started["pid"] == proc.pid
    assert started["application_name"] == "lake-serve"
    assert "timestamp" in started
    (warned,) = [x for x in lines if x["error_severity"] == "WARNING"]
    assert "/health/ready: 503" in warned["message"]
    assert warned["trace_id"] == trace_id  # no SDK in that process: the caller's trace still
