"""The health and metrics server: liveness, readiness with real failures, and metrics that follow
the lake's state."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lake_client.config import Settings, load_settings
from lake_client.local.tls import door_files
from lake_client.server import make_server
from lake_client.transport import client_context
from tests.conftest import point, seal
from tests.redis_cluster import free_ports

Conn = psycopg.Connection[tuple[object, ...]]
Serve = Callable[..., str]


@pytest.fixture
def serve(db: str, settings: Settings) -> Iterator[Serve]:
    """Start a server on a free port (against the test's database and the real Redis unless told
    otherwise, with the lake's `http` certificate) and return its base URL."""
    servers: list[ThreadingHTTPServer] = []
    tls = door_files(settings.home, "http", print)

    def start(dsn: str = db, redis_url: str | None = None) -> str:
        server = make_server("127.0.0.1", 0, dsn, redis_url or settings.redis_url(), tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"https://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str]:
    """GET over HTTPS, the server verified against the lake's CA."""
    context = client_context(load_settings().ca_file)
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_live_and_ready(serve: Serve) -> None:
    base = serve()
    assert get(base + "/health/live") == (200, '{"status": "ok"}')
    code, body = get(base + "/health/ready")
    assert code == 200
    assert json.loads(body) == {"status": "ok", "postgres": "ok", "redis": "ok"}
    assert get(base + "/nowhere")[0] == 404


def test_not_ready_says_what_failed(serve: Serve, db: str) -> None:
    port = free_ports(1)[0]
    no_pg = psycopg.conninfo.make_conninfo(db, host="127.0.0.1", port=port)
    base = serve(dsn=no_pg, redis_url=f"redis://127.0.0.1:{free_ports(1)[0]}/0")
    code, body = get(base + "/health/ready")
    assert code == 503
    got = json.loads(body)
    assert got["status"] == "fail"
    assert str(port) in got["postgres"]
    assert "refused" in got["redis"].lower() or "connect" in got["redis"].lower()
    # Liveness does not depend on them; metrics say the database cannot be read.
    assert get(base + "/health/live")[0] == 200
    code, text = get(base + "/metrics")
    assert code == 200 and "lake_database_up 0.0" in text
    # A Redis URL redis-py cannot read is a failed check too, not an error of the server.
    code, body = get(serve(redis_url="nonsense://x") + "/health/ready")
    assert code == 503 and json.loads(body)["redis"].startswith("invalid Redis URL")


def test_metrics_follow_the_lake(serve: Serve, conn: Conn, location_dataset: str) -> None:
    base = serve()
    _, before = get(base + "/metrics")
    assert "lake_database_up 1.0" in before
    assert 'lake_job_scheduled{job="premake"} 0.0' in before
    assert "lake_job_last_run_ok{" not in before  # no job has run yet
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [
                Jsonb(
                    [
                        {"lat": 1, "lon": 2},  # no time: quarantined
                        point(5),
                    ]
                )
            ],
        )
    conn.execute("CALL lake.run_maintenance('purge_logs')")
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
    _, after = get(base + "/metrics")
    assert 'lake_quarantine_items{dataset="location_history",status="pending"} 1.0' in after
    assert 'lake_records_received_total{dataset="location_history"} 2.0' in after
    assert 'lake_records_accepted_total{dataset="location_history"} 1.0' in after
    assert 'lake_records_archived_total{dataset="location_history"} 0.0' in after
    assert 'lake_job_last_run_ok{job="purge_logs"} 1.0' in after
    assert 'lake_job_last_run_ok{job="premake"} 0.0' in after
    assert 'lake_job_failures_24h{job="premake"} 1.0' in after
    assert 'lake_partitions{dataset="location_history",tier="hot"}' in after


def test_metrics_show_how_far_each_bridge_lags(
    serve: Serve, conn: Conn, location_dataset: str
) -> None:
    base = serve()
    conn.execute("SELECT lake.bridge_advance('behind'), lake.bridge_advance('current')")
    for i in range(3):
        with conn.transaction():
            conn.execute("SELECT lake.act_as('alice')")
            conn.execute(
                "SELECT lake.ingest('location_history', %s)",
                [Jsonb([point(i + 1)])],
            )
    _, text = get(base + "/metrics")  # committed, not yet sealed: the sealer's backlog
    assert 'lake_seal_pending{log="changes"} 3.0' in text
    audit = [ln for ln in text.splitlines() if ln.startswith('lake_seal_pending{log="audit"}')]
    assert len(audit) == 1 and float(audit[0].split()[-1]) >= 3  # the batches, act_as, ...
    seal(conn)
    _, text = get(base + "/metrics")
    assert 'lake_seal_pending{log="changes"} 0.0' in text
    assert 'lake_seal_pending{log="audit"} 0.0' in text
    assert 'lake_seal_pending_age_seconds{log="audit"} 0.0' in text
    last = conn.execute("SELECT max(id) FROM lake.data_changes").fetchone()
    assert last is not None
    conn.execute("SELECT lake.bridge_advance('current', %s)", [last[0]])
    conn.execute("UPDATE lake.data_changes SET created_at = created_at - interval '1 minute'")
    _, text = get(base + "/metrics")
    assert 'lake_bridge_lag_changes{bridge="behind"} 3.0' in text
    assert 'lake_bridge_lag_changes{bridge="current"} 0.0' in text
    assert 'lake_bridge_lag_seconds{bridge="current"} 0.0' in text
    behind = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith('lake_bridge_lag_seconds{bridge="behind"}')
    ]
    assert len(behind) == 1 and 60 <= behind[0] < 3600
    assert 'lake_bridge_last_advance_timestamp_seconds{bridge="current"}' in text


def test_metrics_show_the_notification_queue_filling(serve: Serve, db: str, conn: Conn) -> None:
    """A listener idle inside an open transaction holds the queue's tail: what others NOTIFY
    meanwhile stays queued, and lake_notification_queue_usage shows it (alert at 0.5)."""
    base = serve()
    _, text = get(base + "/metrics")
    assert "# HELP lake_notification_queue_usage" in text and "alert at 0.5" in text

    def usage() -> float:
        _, text = get(base + "/metrics")
        found = [ln for ln in text.splitlines() if ln.startswith("lake_notification_queue_usage ")]
        assert len(found) == 1
        return float(found[0].split()[-1])

    with psycopg.connect(db, autocommit=True) as listener:
        listener.execute("LISTEN lake_test_queue")
        listener.execute("BEGIN")
        listener.execute("SELECT 1")  # now idle in transaction: it reads nothing until it ends
        # About 2 MB of notifications (distinct payloads: duplicates in a transaction fold).
        conn.execute(
            "SELECT pg_notify('lake_test_queue', i || repeat('x', 7000))"
            " FROM generate_series(1, 300) AS i"
        )
        held = usage()
        row = conn.execute("SELECT pg_notification_queue_usage()").fetchone()
        assert row is not None
        assert held > 0 and held <= float(str(row[0]))
        listener.execute("COMMIT")


def test_metrics_say_when_each_certificate_expires(serve: Serve, settings: Settings) -> None:
    """lake_tls_certificate_expiry_timestamp_seconds{certificate} for every certificate in
    LAKE_HOME/tls (the CA and the servers'), as the files say: the alert rule
    certificate_expiring watches it."""
    from prometheus_client.parser import text_string_to_metric_families

    from lake_client.certs import rules

    code, body = get(serve() + "/metrics")
    assert code == 200
    (family,) = [
        f
        for f in text_string_to_metric_families(body)
        if f.name == "lake_tls_certificate_expiry_timestamp_seconds"
    ]
    exported = {s.labels["certificate"]: s.value for s in family.samples}
    folder = settings.home / "tls"
    on_disk = {
        path.stem: rules().info(path.read_bytes()).not_after.timestamp()
        for path in folder.glob("*.crt")
    }
    assert {"ca", "postgres", "redis", "http"} <= set(on_disk)
    assert exported == on_disk
