"""Tracing (OpenTelemetry) and the JSON logs of the lake's Python processes.

Tracing. The client library uses only OpenTelemetry's API (``tracer``): an application that sets
up OpenTelemetry gets the lake's spans in its own traces, and one that does not pays next to
nothing (the API's no-op tracer). The lake's own processes (the CLI, ``lake serve``, ``lake
bridge``, ``lake grpc``) call ``setup_tracing``, which installs the SDK only where
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, exporting by
OTLP over HTTP (Jaeger, the OpenTelemetry Collector, Tempo accept it), sampling 1 trace in 10
unless the caller's trace was sampled (``ParentBased(TraceIdRatioBased(0.1))``;
``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` override it as the SDK defines them).

The statements a sampled span causes carry its W3C traceparent as a trailing SQL comment
(``sql_comment``, which lake_client.queries.sql appends: the sqlcommenter convention), so the
statement's line in PostgreSQL's JSON log (log_min_duration_statement: the slow ones) leads to
its span, and a slow span to its statements. Unsampled spans add nothing: their text stays the
same, and psycopg may keep preparing them.

Logs. ``setup_logging`` sends the process's log records to LAKE_HOME/log/lake-<process>.json as
JSON lines at INFO, beside PostgreSQL's postgresql-<day>.json and with its key names where they
mean the same (timestamp, pid, error_severity, message, application_name), plus the trace and
span ids of the record's span. The file turns over at midnight UTC into
lake-<process>.<YYYY-MM-DD>.json; 30 of those are kept. Standard error stays human-readable.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from lake_client import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

# The ratio of root traces sampled when OTEL_TRACES_SAMPLER does not say otherwise.
SAMPLE_RATIO = 0.1
LOG_DAYS_KEPT = 30
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

tracer = trace.get_tracer("lake_client", __version__)

_installed = False


def setup_tracing(process: str, exporter: SpanExporter | None = None) -> bool:
    """Install OpenTelemetry's SDK for this process (once), as service ``lake-<process>``
    unless OTEL_SERVICE_NAME names it. Without an `exporter` (the SDK's in-memory one in the
    tests, sent synchronously) it exports by OTLP, in batches, and only where an OTLP endpoint
    is set: otherwise nothing is installed. Returns whether the SDK is installed."""
    global _installed
    if _installed:
        return True
    if exporter is None and not any(os.environ.get(v) for v in _ENDPOINT_VARS):
        return False
    # Imported here: a process that exports nothing never loads the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"lake-{process}"}
    provider = TracerProvider(sampler=sampler(), resource=Resource.create(attributes))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _installed = True
    return True


def sampler() -> Sampler | None:
    """ParentBased(TraceIdRatioBased(0.1)): a caller's decision stands, and 1 in 10 of the
    traces that start here are kept. None when OTEL_TRACES_SAMPLER is set: the SDK then reads it
    (and OTEL_TRACES_SAMPLER_ARG) itself."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBased(TraceIdRatioBased(SAMPLE_RATIO))


def traceparent() -> str | None:
    """The W3C traceparent of the current span when it is sampled, else None."""
    ctx = trace.get_current_span().get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled):
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def sql_comment() -> str:
    """The comment that ties a statement to the current sampled span ("" when there is none).
    On a line of its own: a statement ending in a -- comment does not swallow it."""
    parent = traceparent()
    return "" if parent is None else f"\n/*traceparent='{parent}'*/"


# -- logs ------------------------------------------------------------------------------------


class _TraceIds(logging.Filter):
    """Adds the trace and span ids of the record's span (when there is one) to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = f"{ctx.trace_id:032x}"
            record.span_id = f"{ctx.span_id:016x}"
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when a record comes (a test may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # not setStream, which flushes the old one (maybe closed)
        super().emit(record)


def _dated(default_name: str) -> str:
    """lake-serve.json.2026-12-07 -> lake-serve.2026-12-07.json (the handler's cleanup still
    finds it: the date follows the name and a dot)."""
    path, _, day = default_name.rpartition(".")
    stem = path.removesuffix(".json")
    return f"{stem}.{day}.json"


class _DailyJson(logging.handlers.TimedRotatingFileHandler):
    """Makes its folder when the first record comes: a command that fails at once (a bad
    option, say) leaves nothing behind."""

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        return super()._open()


def json_file_handler(log_dir: Path, process: str) -> logging.Handler:
    """LAKE_HOME/log/lake-<process>.json, JSON lines, a file a day (UTC), 30 days kept."""
    from pythonjsonlogger.json import JsonFormatter  # loaded only by a process that logs to a file

    handler = _DailyJson(
        log_dir / f"lake-{process}.json",
        when="midnight",
        utc=True,
        backupCount=LOG_DAYS_KEPT,
        encoding="utf-8",
        delay=True,
    )
    handler.namer = _dated
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{process}{name}{message}",
            style="{",
            timestamp=True,
            rename_fields={"levelname": "error_severity", "process": "pid", "name": "logger"},
            static_fields={"application_name": f"lake-{process}"},
        )
    )
    handler.addFilter(_TraceIds())
    return handler


_handlers: list[logging.Handler] = []


def setup_logging(
    process: str, log_dir: Path | None, *, stderr_level: int = logging.INFO, create: bool = True
) -> Path | None:
    """Log at INFO: JSON lines into `log_dir` (made with the first record if `create`, else
    only if it exists), and human-readable lines at `stderr_level` and above on standard error.
    Calling it again replaces what an earlier call set up. Returns the JSON file, None when
    there is none (also when `log_dir` cannot be written)."""
    root = logging.getLogger()
    for old in _handlers:
        root.removeHandler(old)
        old.close()
    _handlers.clear()
    stderr = _Stderr()
    stderr.setLevel(stderr_level)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _handlers.append(stderr)
    target: Path | None = None
    if log_dir is not None and _writable(log_dir, create):
        _handlers.append(json_file_handler(log_dir, process))
        target = log_dir / f"lake-{process}.json"
    for handler in _handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return target


def _writable(folder: Path, create: bool) -> bool:
    """Whether `folder` can take files: it exists and is writable, or (with `create`) the
    nearest existing folder above it is."""
    while not folder.is_dir():
        if not create or folder.parent == folder or folder.exists():
            return False
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)
