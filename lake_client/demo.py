"""`lake demo`: a real lake taking in generated location history, some of it bad.

Three people's exports (alice, bob, carol) of about `records` points in all, over the last
eleven months; a few percent are broken the way real exports break: coordinates in 1e-7
degrees, local times without an offset, clocks reset to 1970 (history to the lake: archived in
its month, not refused), sentinel values, truncated lines, NUL bytes, invalid UTF-8. The data is
generated from the date and batch ids from its content, so running the demo twice on one day
re-sends the same batches, which the lake recognises and skips.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from lake_client import local, migrate, render
from lake_client.client import BatchResult, IngestSummary, Lake
from lake_client.config import load_settings
from lake_client.errors import DatasetExists
from lake_client.records import Record

DATASET = "location_history"
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "A point of someone's location history",
    "type": "object",
    "required": ["ts", "lat", "lon"],
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": "number", "minimum": 0},
        "altitude_m": {"type": "number"},
        "source": {"enum": ["gps", "wifi", "cell"]},
        "activity": {"type": "string", "maxLength": 32},
        "device": {"type": "string", "maxLength": 64},
    },
}
PEOPLE = {  # user: (share of the records, home latitude, home longitude)
    "alice": (0.6, 52.5200, 13.4050),
    "bob": (0.3, 48.1372, 11.5756),
    "carol": (0.1, 41.3874, 2.1686),
}


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _breakers() -> list[tuple[float, str, Callable[[dict[str, object], random.Random], bytes]]]:
    """(share, what, how) for each realistic way a record breaks."""

    def dumps(doc: dict[str, object]) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    def e7(d: dict[str, object], r: random.Random) -> bytes:
        # Google Takeout writes latitudeE7: degrees times 10^7, copied over unconverted.
        d["lat"] = round(float(str(d["lat"])) * 1e7)
        d["lon"] = round(float(str(d["lon"])) * 1e7)
        return dumps(d)

    def local_time(d: dict[str, object], r: random.Random) -> bytes:
        d["ts"] = str(d["ts"])[:19].replace("T", " ")  # no offset: ambiguous
        return dumps(d)

    def epoch_zero(d: dict[str, object], r: random.Random) -> bytes:
        d["ts"] = "1970-01-01T00:00:00.000Z"  # a phone whose clock was reset
        return dumps(d)

    def future(d: dict[str, object], r: random.Random) -> bytes:
        d["ts"] = "2099-12-31T23:59:59.000Z"
        return dumps(d)

    def sentinel(d: dict[str, object], r: random.Random) -> bytes:
        d["accuracy_m"] = -1  # "unknown"
        return dumps(d)

    def unknown_source(d: dict[str, object], r: random.Random) -> bytes:
        d["source"] = "bluetooth"
        return dumps(d)

    def missing(d: dict[str, object], r: random.Random) -> bytes:
        del d["lon"]
        return dumps(d)

    def truncated(d: dict[str, object], r: random.Random) -> bytes:
        raw = dumps(d)
        return raw[: r.randrange(10, len(raw) - 5)]  # the export was cut off mid-line

    def nul(d: dict[str, object], r: random.Random) -> bytes:
        return dumps(d).replace(b'"device":"', b'"device":"\\u0000', 1)

    def bad_utf8(d: dict[str, object], r: random.Random) -> bytes:
        return dumps(d).replace(b'"device":"', b'"device":"\xff', 1)

    def huge_number(d: dict[str, object], r: random.Random) -> bytes:
        field = b'"altitude_m":' + json.dumps(d["altitude_m"]).encode()
        return dumps(d).replace(field, b'"altitude_m":1e999999', 1)

    def not_an_object(d: dict[str, object], r: random.Random) -> bytes:
        return b"[" + dumps(d) + b"]"

    return [
        (0.008, "coordinates in 1e-7 degrees", e7),
        (0.005, "local time without offset", local_time),
        (0.003, "clock reset to 1970", epoch_zero),
        (0.001, "clock in 2099", future),
        (0.005, "accuracy -1 sentinel", sentinel),
        (0.003, "unknown source", unknown_source),
        (0.002, "missing longitude", missing),
        (0.001, "truncated line", truncated),
        (0.0005, "NUL character", nul),
        (0.0005, "invalid UTF-8", bad_utf8),
        (0.0003, "number beyond numeric's range", huge_number),
        (0.0003, "an array, not an object", not_an_object),
    ]


def generate(user: str, count: int, anchor: date) -> list[Record]:
    """`count` points of `user`'s location history up to `anchor`, some broken."""
    _, lat0, lon0 = PEOPLE[user]
    rng = random.Random(f"{user}:{anchor.isoformat()}")
    end = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
    # The last 80 days: recent data, whatever the tiers (older months take records too).
    start = end - timedelta(days=80)
    step = (end - start) / count
    breakers = _breakers()
    records = []
    lat, lon = lat0, lon0
    for i in range(count):
        ts = start + step * i + timedelta(seconds=rng.random() * step.total_seconds() / 2)
        # A random walk that keeps returning home.
        lat += (lat0 - lat) * 0.05 + rng.gauss(0, 0.002)
        lon += (lon0 - lon) * 0.05 + rng.gauss(0, 0.003)
        doc: dict[str, object] = {
            "ts": _iso(ts),
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "accuracy_m": round(abs(rng.gauss(12, 8)) + 1, 1),
            "altitude_m": round(40 + 30 * math.sin(i / 50) + rng.gauss(0, 2), 1),
            "source": rng.choices(["gps", "wifi", "cell"], [0.7, 0.25, 0.05])[0],
            "activity": rng.choice(["still", "walking", "in_vehicle", "on_bicycle", "running"]),
            "device": f"{user}-phone",
        }
        if rng.random() < 0.002:
            # A note typed at a place, now and then with a personal identifier in it: the lake
            # finds those (lake.pii_findings) without keeping the value.
            doc["note"] = rng.choice(
                [
                    f"met {user}'s landlord, call back on +49 30 {rng.randrange(10**6, 10**7)}",
                    f"parcel for {user}.{rng.randrange(100)}@example.org",
                    "hotel wifi login from 10.0.0." + str(rng.randrange(2, 250)),
                    "lunch",
                ]
            )
        roll = rng.random()
        raw = None
        for p, _, breaker in breakers:
            if roll < p:
                raw = breaker(doc, rng)
                break
            roll -= p
        records.append(
            Record(
                f"{user}.jsonl line {i + 1}", raw or json.dumps(doc, separators=(",", ":")).encode()
            )
        )
    return records


def write_files(folder: Path, total: int, anchor: date) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for user, (share, _, _) in PEOPLE.items():
        path = folder / f"{user}.jsonl"
        path.write_bytes(
            b"".join(r.raw + b"\n" for r in generate(user, int(total * share), anchor))
        )
        files[user] = path
    return files


def run_demo(total: int) -> None:
    say = render.say
    settings = load_settings()
    if settings.embedded:
        say("[bold]1. Starting the embedded lake[/] (PostgreSQL + Redis)")
        local.up(settings, quiet=True)
    dsn = settings.dsn()
    say("[bold]2. Migrating[/] the database to the latest schema")
    migrate.upgrade(dsn)
    anchor = datetime.now(UTC).date()
    with Lake(dsn, application_name="lake-demo") as lake:
        say(f"[bold]3. Creating the dataset[/] {DATASET}")
        try:
            lake.create_dataset(DATASET, SCHEMA, description="Location history exports")
        except DatasetExists:
            say(f"   {DATASET} exists already: adding to it")
        # Its points in degrees: a GiST index per month for lake.near / within / stay_points.
        lake.declare_coordinates(DATASET, "lat", "lon")
        say(
            f"[bold]4. Generating[/] {total:,} location records for "
            f"{', '.join(PEOPLE)} (a few percent broken)"
        )
        files = write_files(settings.home / "demo", total, anchor)
        say("[bold]5. Ingesting[/] them with COPY; validation runs in the database")
        summaries: list[IngestSummary] = []
        for user, path in files.items():
            records = [
                Record(f"{path.name} line {n}", line)
                for n, line in enumerate(path.read_bytes().splitlines(), start=1)
            ]
            lake.act_as(user)
            # Batch ids from the file's content: the same file again is recognised.
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"datapunk-lake-demo:{user}:{digest}")
            label = f"{path.name} → {DATASET} as {user}"
            with render.progress(label, len(records), eta=False) as advance:

                def done(result: BatchResult, _nbytes: int) -> None:
                    advance(result.received, result.received)

                summaries.append(
                    lake.ingest(
                        DATASET, records, origin=path.name, batch_namespace=namespace, on_batch=done
                    )
                )
        _report(lake, summaries, dsn)


def _report(lake: Lake, summaries: list[IngestSummary], dsn: str) -> None:
    say = render.say
    received = sum(s.received for s in summaries)
    accepted = sum(s.accepted for s in summaries)
    quarantined = sum(s.quarantined for s in summaries)
    archived = sum(s.archived for s in summaries)
    seconds = sum(s.seconds for s in summaries)
    batches = [b for s in summaries for b in s.batches]
    skipped = sum(1 for b in batches if b.duplicate)
    # A rate only for work done now: batches an earlier run stored cost nothing here.
    rate = (
        "nothing new"
        if batches and skipped == len(batches)
        else f"{received / seconds if seconds else 0:,.0f} records/s"
    )
    say("")
    say(
        f"[bold]Received {received:,} records: accepted [green]{accepted:,}[/], "
        f"archived {archived:,}, quarantined [yellow]{quarantined:,}[/] "
        f"({rate}). "
        f"received = accepted + archived + quarantined: "
        f"{'[green]yes[/]' if received == accepted + archived + quarantined else '[red]NO[/]'}"
    )
    if skipped:
        say(
            f"{skipped} batch(es) were ingested by an earlier run and skipped "
            "(same content, same batch ids): nothing was stored twice."
        )
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for s in summaries:
        for r in s.reasons:
            counts[r.rule] += r.records
            examples.setdefault(r.rule, r.example)
    if counts:
        render.table(
            ("rule", "records", "example"),
            [(rule, f"{n:,}", examples[rule]) for rule, n in counts.most_common()],
            title="Why records were quarantined",
        )
    items = lake.quarantine(DATASET, "pending", limit=5)
    if items:
        render.table(
            ("id", "user", "where", "reasons"),
            [
                (
                    q["id"],
                    q["user_id"],
                    q["record_ref"],
                    "; ".join(f"{x['rule']} ({x['path']})" for x in q["reasons"]),
                )
                for q in items
            ],
            title="A few quarantined records",
        )
    found = lake.pii_findings(DATASET, limit=100_000)
    if found:
        kinds = Counter(f["kind"] for f in found)
        say(
            f"Personal identifiers found in {len({f['record_id'] for f in found}):,} stored "
            "records (recorded by path and kind, never the value): "
            + ", ".join(f"{kind} {n:,}" for kind, n in kinds.most_common())
        )
    render.partitions(
        [p for p in lake.partitions(DATASET) if p["kind"] == "month"], lake.row_counts(DATASET)
    )
    # A place search as alice: lake.near returns only the rows of the user acted for.
    _, lat, lon = PEOPLE["alice"]
    lake.act_as("alice")
    near = lake.near(DATASET, lat, lon, 200, max_rows=1_000_000)
    say(
        f"PostGIS {lake.postgis_version()}: alice has {len(near):,} points within 200 m of her "
        f"home ({lat}, {lon}), by the GiST index of the dataset's points (lake.near)"
    )
    say("")
    say("[bold]Try it yourself[/] (connected as the lake's superuser):")
    say(f'  psql "{dsn}"        [dim]# or: .venv/bin/lake psql[/]')
    for line in (
        "SELECT * FROM lake.quality_report;",
        "SELECT id, record_ref, reasons FROM lake.quarantine LIMIT 5;",
        "SELECT lake.act_as('alice', 'session');   -- be alice for this session",
        "SET ROLE lake_app;                         -- as an application: RLS applies",
        f"SELECT count(*), min(ts), max(ts) FROM user_data.{DATASET};   -- alice's rows only",
        f"SELECT count(*) FROM lake.near('{DATASET}', 52.52, 13.405, 200, max_rows => 100000);"
        "   -- hers within 200 m of home",
        f"SELECT * FROM lake.stay_points('{DATASET}', current_date - 1, 10, 300);"
        "   -- where she stayed yesterday",
        "RESET ROLE;",
        "SELECT * FROM lake.partitions;",
        "SELECT * FROM lake.quarantine_release(<id>, '<corrected record>'::jsonb);",
        "SELECT path, kind, count(*) FROM lake.pii_findings GROUP BY 1, 2;",
        "SELECT * FROM lake.verify_audit_chain();   -- the audit log's hash chain",
        "SELECT job, schedule, scheduled, last_status FROM lake.jobs;   -- what pg_cron runs",
    ):
        say(f"  {line}", markup=False)
    say("[bold]And an app's key[/]:")
    for line in (
        ".venv/bin/lake users add alice && .venv/bin/lake keys create alice --scope read",
        "SELECT lake.authenticate('<the key>');   -- as a login role in lake_app",
    ):
        say(f"  {line}", markup=False)
