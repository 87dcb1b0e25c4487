"""Monitoring: the specification's metrics hold what the database holds, every alert rule passes
its promtool unit test, and end to end the real Prometheus scrapes the real `lake serve`, a rule
fires and the real Alertmanager delivers it to a webhook."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client.config import Settings, load_settings
from lake_client.local.monitoring import Stack, config_dir
from lake_client.local.tls import door_files
from lake_client.server import make_server
from lake_client.transport import client_context
from tests.conftest import point

Conn = psycopg.Connection[tuple[object, ...]]
needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs Debian's prometheus (docker/setup-debian.sh)"
)


@pytest.fixture
def metrics_url(db: str, settings: Settings) -> Iterator[str]:
    tls = door_files(settings.home, "http", print)
    server = make_server("127.0.0.1", 0, db, settings.redis_url(), tls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def scrape(url: str) -> str:
    context = client_context(load_settings().ca_file)  # `lake serve` speaks HTTPS
    with urllib.request.urlopen(url, timeout=30, context=context) as response:
        text: str = response.read().decode()
        return text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample with exactly these labels (in any order), else None."""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return None


@needs_prometheus
def test_every_alert_rule_passes_its_promtool_test() -> None:
    rules = (config_dir() / "rules" / "lake.rules.yml").read_text()
    tests = (config_dir() / "tests" / "lake.rules.test.yml").read_text()
    alerts = re.findall(r"^\s*- alert: (\w+)", rules, re.M)
    assert {"high_latency", "error_rate", "certificate_expiring", "disk_filling"} <= set(alerts)
    untested = [a for a in alerts if f"alertname: {a}\n" not in tests]
    assert untested == []
    done = subprocess.run(
        ["promtool", "test", "rules", str(config_dir() / "tests" / "lake.rules.test.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_prometheus
def test_specification_metrics_hold_what_the_database_holds(
    metrics_url: str, conn: Conn, location_dataset: str, archive_dir: Path
) -> None:
    before = scrape(metrics_url)
    ingests = sample(
        before, "data_processing_duration_seconds_count", operation="ingest", status="ok"
    )
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [Jsonb([{"lat": 1, "lon": 2}, point(5), point(6), point(7)])],  # the first: no time
        )
    (archive_dir / "probe.bin").write_bytes(b"x" * 12345)
    conn.execute("CALL lake.run_maintenance('verify_audit')")  # the chain's verdict, as kept
    after = scrape(metrics_url)

    # One batch more, as the database recorded it.
    count = sample(after, "data_processing_duration_seconds_count", operation="ingest", status="ok")
    assert count == (ingests or 0) + 1
    row = conn.execute(
        "SELECT count, sum FROM lake.op_duration_histogram WHERE operation = 'ingest'"
    ).fetchone()
    assert row is not None and row[0] == count
    assert (
        sample(
            after,
            "data_processing_duration_seconds_bucket",
            operation="ingest",
            status="ok",
            le="+Inf",
        )
        == count
    )
    assert "# TYPE data_processing_duration_seconds histogram" in after

    # One record of four failed the time check: 0.75 for time and all, 1.0 for encoding.
    for check, score in (("all", 0.75), ("time", 0.75), ("encoding", 1.0)):
        got = sample(after, "data_quality_score", table="location_history", check_type=check,
                     window="all")  # fmt: skip
        assert got == score, check
    assert sample(after, "data_quality_score", table="location_history", check_type="time",
                  window="24h") == 0.75  # fmt: skip

    # Archive bytes are the files on disk; the partitions' tier bytes are lake.partitions'.
    on_disk = sum(p.stat().st_size for p in archive_dir.rglob("*") if p.is_file())
    assert on_disk >= 12345
    assert sample(after, "storage_usage_bytes", storage_type="archive", schema="") == on_disk
    hot = conn.execute("SELECT sum(bytes) FROM lake.partitions WHERE tier = 'hot'").fetchone()
    assert hot is not None
    assert sample(
        after, "storage_usage_bytes", storage_type="tier_hot", schema="user_data_partitions"
    ) == float(hot[0])
    redis_bytes = sample(after, "storage_usage_bytes", storage_type="redis", schema="")
    assert redis_bytes is not None and redis_bytes > 0
    for tier in ("postgres", "archive", "redis"):
        for op in ("read", "write"):
            got = sample(after, "storage_latency_seconds", tier=tier, operation=op)
            assert got is not None and got >= 0, (tier, op)
    assert sample(after, "lake_audit_chain_ok") == 1.0
    verified = sample(after, "lake_audit_chain_verified_timestamp_seconds")
    assert verified is not None and abs(verified - time.time()) < 600
    assert "lake_build_info{" in after

    done = subprocess.run(
        ["promtool", "check", "metrics"], input=after, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_job_outcomes_are_counters(metrics_url: str, conn: Conn) -> None:
    conn.execute("CALL lake.run_maintenance('purge_logs')")
    conn.execute("CALL lake.run_maintenance('purge_logs')")
    text = scrape(metrics_url)
    assert sample(text, "lake_job_runs_total", job="purge_logs", status="ok") == 2.0
    # purge_logs folds the day-old durations into totals: the histogram's counts stay.
    conn.execute("SELECT lake_internal._record_duration('export', now() - interval '2 s')")
    before = sample(scrape(metrics_url), "data_processing_duration_seconds_count",
                    operation="export", status="ok")  # fmt: skip
    folded = conn.execute("SELECT lake_internal._rollup_op_durations(clock_timestamp())").fetchone()
    assert folded is not None and folded[0] >= 1
    assert conn.execute("SELECT count(*) FROM lake_internal.op_durations").fetchone() == (0,)
    after = scrape(metrics_url)
    assert sample(after, "data_processing_duration_seconds_count", operation="export",
                  status="ok") == before  # fmt: skip
    assert sample(after, "data_processing_duration_seconds_bucket", operation="export",
                  status="ok", le="2.5") == before  # fmt: skip


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@needs_prometheus
def test_prometheus_scrapes_the_lake_and_alertmanager_delivers_an_alert(
    db: str, settings: Settings, conn: Conn, location_dataset: str, tmp_path: Path
) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    _Webhook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    stack = Stack(
        folder=tmp_path / "monitoring",
        dsn=db,
        redis_url=settings.redis_url(),
        ca_file=settings.ca_file,
        scrape_interval="1s",
        evaluation_interval="1s",
        group_wait="1s",
        webhook_url=f"http://127.0.0.1:{hook.server_port}/alerts",
    )
    try:
        stack.start()
        # A failing premake: a table squats on the next partition's name.
        nxt = conn.execute(
            "SELECT lake_internal._partition_name(name, partitions_to), partitions_to"
            " FROM lake.datasets"
        ).fetchone()
        assert nxt is not None
        conn.execute(
            psycopg.sql.SQL("CREATE TABLE user_data_partitions.{} (x int)").format(
                psycopg.sql.Identifier(str(nxt[0]))
            )
        )
        conn.execute("CALL lake.run_maintenance('premake', %s)", [nxt[1]])
        deadline = time.monotonic() + 120  # a bound on waiting, not an assertion of speed
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not alerts:
            alerts = [
                a
                for msg in list(_Webhook.received)
                for a in msg["alerts"]
                if a["labels"]["alertname"] == "job_failing" and a["status"] == "firing"
            ]
            time.sleep(0.5)
        assert alerts, "no job_failing alert reached the webhook; " + str(_Webhook.received)
        assert alerts[0]["labels"]["lake_job"] == "premake"
        # Prometheus scraped the lake and the exporters.
        with urllib.request.urlopen(stack.url("prometheus") + "/api/v1/targets") as r:
            targets = json.load(r)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        assert health["lake"] == "up"
        assert set(health) == {"lake", "postgres", "redis", "node"}
    finally:
        stack.stop()
        hook.shutdown()
        hook.server_close()
    assert all(stack.pid(n) is None for n in ("prometheus", "alertmanager", "lake"))
    assert os.path.exists(tmp_path / "monitoring" / "prometheus.yml")
