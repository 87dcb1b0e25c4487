"""The status page of `lake serve` (GET /status), in a real headless browser: Debian's Chromium
loads it from a server on a free port against a test database with records, quarantined ones and
job runs, dumps the DOM it built and writes a screenshot. The DOM must show the figures the
database holds, and the screenshot the plots."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from psycopg.types.json import Jsonb

from lake_client import status_page
from lake_client.certs import rules
from lake_client.config import Settings
from lake_client.local.tls import door_files
from lake_client.server import make_server
from lake_client.transport import client_context
from tests.conftest import point
from tests.redis_cluster import free_ports

Conn = psycopg.Connection[tuple[object, ...]]
BROWSER_TIMEOUT_S = 180  # a bound against a hung browser, not a timing that is asserted


class Dom(HTMLParser):
    """Elements (tag, attributes) and the visible text of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))

    def find(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and cls in a.get("class", "").split()]


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "chromium is not installed: the status page is tested in Debian's Chromium"
            " (sudo docker/setup-debian.sh, or apt-get install chromium)",
            pytrace=False,
        )
    return found


def browse(url: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, with a profile of its own under ``out``."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # the tests may run as root, where the sandbox refuses to start
            "--disable-gpu",
            "--hide-scrollbars",
            # lake serve speaks HTTPS with the lake's own CA, which this throwaway profile does
            # not trust; the servers' TLS is tested in tests/test_transport.py.
            "--ignore-certificate-errors",
            f"--user-data-dir={out / 'chromium-profile'}",
            "--window-size=1280,2000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def base_url(db: str, settings: Settings) -> Iterator[str]:
    server = make_server(
        "127.0.0.1", 0, db, settings.redis_url(), door_files(settings.home, "http", print)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def lake_home_with_ca(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LAKE_HOME for the page's certificates section: a tls/ folder with a CA. (After
    `settings`, which reads LAKE_HOME for the servers' own state.)"""
    home = tmp_path / "lake-home"
    (home / "tls").mkdir(parents=True)
    (home / "tls" / "ca.crt").write_bytes(rules().create_ca("Datapunk Lake CA").cert_pem)
    monkeypatch.setenv("LAKE_HOME", str(home))
    return home


def _ingest(conn: Conn, records: list[dict[str, object]], days_ago: int) -> None:
    """A batch of alice's records, recorded as received ``days_ago`` days ago."""
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute("SELECT lake.ingest('location_history', %s)", [Jsonb(records)])
    if days_ago:
        conn.execute(
            "UPDATE lake.batches SET created_at = created_at - make_interval(days => %s)"
            " WHERE created_at > now() - interval '1 minute'",
            [days_ago],
        )


def test_the_status_page_shows_the_lake_in_a_browser(
    base_url: str,
    conn: Conn,
    location_dataset: str,
    lake_home_with_ca: Path,
    tmp_path: Path,
) -> None:
    # Three days of batches: 4 of 4 stored two days ago, 3 of 4 yesterday, 2 of 5 today.
    _ingest(conn, [point(i + 1) for i in range(4)], days_ago=2)
    _ingest(conn, [point(5), point(6), point(7), {"lat": 1, "lon": 2}], days_ago=1)
    _ingest(
        conn,
        [point(8), point(9), {"lat": 1, "lon": 2}, point(10, lat=999), point(11, lat=-999)],
        days_ago=0,
    )
    conn.execute("CALL lake.run_maintenance('purge_logs')")
    conn.execute("SELECT lake.bridge_advance('status-page-bridge')")
    # The figures job's samples of two days (UTC): storage over time shows each day's last.
    conn.execute(
        "INSERT INTO lake.figure_history (at, figure, subject, value)"
        " SELECT d + o, 'storage_bytes', s, v FROM (VALUES"
        "   (interval '-2 hours', 'tier_hot', 1000), (interval '-1 hour', 'tier_hot', 2000),"
        "   (interval '0', 'tier_hot', 3000), (interval '0', 'archive', 500),"
        "   (interval '0', 'postgres', 99)) AS x(o, s, v),"
        " LATERAL (SELECT date_trunc('day', now(), 'UTC') AS d) AS t"
    )

    dom_run = browse(base_url + "/status", tmp_path, "--dump-dom")
    assert dom_run.returncode == 0, dom_run.stderr[-2000:]
    (tmp_path / "status.html").write_text(dom_run.stdout)
    dom = Dom(dom_run.stdout)
    text = " ".join(dom.text)
    assert "Datapunk Lake" in text and "cannot be read" not in text

    # Quality per day: one point per day (UTC) of the batches, at the score they give.
    days = [
        str(d)
        for (d,) in conn.execute(
            "SELECT (created_at AT TIME ZONE 'UTC')::date FROM lake.batches ORDER BY created_at"
        )
    ]
    points = {p["data-x"]: float(p["data-y"]) for p in dom.find("circle", "point")}
    assert points == dict(zip(days, (1.0, 0.75, 0.4), strict=True))
    assert [s["data-series"] for s in dom.find("g", "series")] == ["location_history"]

    # The quarantine queue by rule: the bars and the table say what the database holds.
    held = {
        (str(d), str(r)): int(str(n))
        for d, r, n in conn.execute(
            "SELECT q.dataset, r ->> 'rule', count(DISTINCT q.id) FROM lake.quarantine AS q,"
            " jsonb_array_elements(q.reasons) AS r WHERE q.status = 'pending' GROUP BY 1, 2"
        )
    }
    assert held[("location_history", "time_missing")] == 2
    assert sum(n for (_, r), n in held.items() if r != "time_missing") >= 2  # lat out of range
    bars = {
        (b["data-dataset"], b["data-rule"]): int(b["data-value"])
        for b in dom.find("rect", "bar")
        if "data-rule" in b
    }
    assert bars == held

    # Every job, and the run of purge_logs.
    jobs = [str(j) for (j,) in conn.execute("SELECT name FROM lake.job_defs ORDER BY position")]
    assert len(jobs) > 3
    for job in jobs:
        assert job in dom.text
    assert dom.find("span", "run-ok") or dom.find("span", "run-succeeded")

    # Storage: the month partitions, by tier, as stacked bars.
    tiers = {b["data-tier"] for b in dom.find("rect", "bar") if "data-tier" in b}
    assert "hot" in tiers
    history = {
        (b["data-day"], b["data-tier"]): int(b["data-value"])
        for b in dom.find("rect", "bar")
        if "data-day" in b
    }
    row = conn.execute("SELECT max(at AT TIME ZONE 'UTC')::date FROM lake.figure_history")
    today = row.fetchone()[0]  # type: ignore[index]
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert history == {
        (yesterday, "hot"): 2000,
        (today.isoformat(), "hot"): 3000,
        (today.isoformat(), "archive"): 500,
    }
    assert "status-page-bridge" in dom.text
    assert "ca.crt" in dom.text and "Datapunk Lake CA (CA)" in text

    shot = tmp_path / "status.png"
    shot_run = browse(base_url + "/status", tmp_path, f"--screenshot={shot}")
    assert shot_run.returncode == 0, shot_run.stderr[-2000:]
    print(f"status page screenshot: {shot}")  # shown with pytest -s; kept with tmp_path
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    # The plots' ink is in the picture: the quality line and the storage tier's bars.
    assert _rgb(status_page.PALETTE[0]) in colours
    assert _rgb(status_page.TIER_COLOURS["hot"]) in colours


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@pytest.mark.fast
def test_the_page_says_when_the_database_cannot_be_read(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    code, body = status_page.page(f"host=127.0.0.1 port={port} dbname=lake", tmp_path)
    assert code == 503
    assert b"cannot be read" in body


def test_the_page_is_served_at_status_and_root(base_url: str, settings: Settings) -> None:
    for path in ("/", "/status"):
        context = client_context(settings.ca_file)
        with urllib.request.urlopen(base_url + path, timeout=30, context=context) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            page = response.read().decode()
        assert "No records received in the last 90 days." in page  # a fresh lake
        assert "No certificates yet" in page or "ca.crt" in page


@pytest.mark.fast
def test_everything_from_users_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    figures = status_page.Figures(
        quality_daily=[{"dataset": evil, "day": when.date(), "received": 4, "quarantined": 1}],
        quality_now=[
            {"dataset": evil, "time_window": "all", "received": 4, "failed": 1, "score": 0.75}
        ],
        quarantine=[{"dataset": evil, "rule": evil, "items": 1}],
        jobs=[
            {
                "job": "j",
                "schedule": "* * * * *",
                "scheduled": True,
                "last_start": when,
                "last_end": when,
                "last_status": "failed",
                "last_error": evil,
                "failures_24h": 1,
                "recent": ["failed"],
            }
        ],
        storage_months=[{"month": when.date(), "tier": evil, "bytes": 10}],
        storage_history=[{"day": when.date(), "tier": evil, "bytes": 10}],
        storage_now=[{"storage_type": evil, "bytes": 10, "parts": 2}],
        bridges=[{"bridge": evil, "behind": 0, "age_s": 0.0, "advanced": when}],
        certificates=[{"file": evil, "error": evil}],
    )
    page = status_page.render(figures, when)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert 'alert("x")' not in page  # quotes too: nothing breaks out of an attribute


@pytest.mark.fast
def test_long_names_are_shortened_on_the_plots_and_whole_in_their_tooltips() -> None:
    long = "a_dataset_with_a_rather_long_name_indeed"
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    figures = status_page.Figures(
        quality_daily=[
            {"dataset": f"{long}_{i}", "day": when.date(), "received": 10, "quarantined": i}
            for i in range(6)
        ],
        quality_now=[],
        quarantine=[{"dataset": long, "rule": "additionalProperties", "items": 3}],
        jobs=[],
        storage_months=[],
        storage_history=[],
        storage_now=[],
        bridges=[],
        certificates=[],
    )
    page = status_page.render(figures, when)
    dom = Dom(page)
    assert len(dom.find("circle", "point")) == 6
    assert len(dom.find("text", "legend")) == 6  # two rows: the plot grows to hold them
    assert f"<title>{long}_5</title>" in page
    assert "a_dataset_with_a_rath… · additionalProperties" in dom.text
    assert f"<title>{long} · additionalProperties: 3</title>" in page
    # The score axis starts at the quarter below the lowest score (0.5 here), labelled.
    assert "0.50" in dom.text and "0.00" not in dom.text


@pytest.mark.fast
def test_a_certificate_that_cannot_be_read_is_listed_with_why(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(rules().create_ca("Datapunk Lake CA").cert_pem)
    (tmp_path / "http.crt").write_text("not a certificate\n")
    found = status_page.read_certificates(tmp_path)
    assert [c["file"] for c in found] == ["ca.crt", "http.crt"]
    assert found[0]["common_name"] == "Datapunk Lake CA" and found[0]["is_ca"] is True
    assert "error" in found[1] and found[1]["error"]
    assert status_page.read_certificates(tmp_path / "absent") == []
