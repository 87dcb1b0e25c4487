"""Places against the real PostGIS: declared coordinates (degrees, E7 integers, nested paths),
lake.near, lake.within and lake.stay_points seeing only the caller's rows (users, and a service
only the user it acts for), the GiST index on every month, clear errors, and `lake up`'s refusal
of a PostGIS older than 3.4."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from lake_client.client import Lake
from lake_client.errors import ClusterError, DatasetError, InputError
from lake_client.local.postgres import check_postgis, pg_bindir, postgis_installed
from lake_client.local.processes import Paths
from tests.conftest import ADMIN_ROLE, APP_ROLE, SERVICE_ROLE

Conn = psycopg.Connection[tuple[object, ...]]
SCHEMA = '{"type": "object", "required": ["ts"]}'
HOME = (52.5200, 13.4050)  # Berlin
WORK = (52.5300, 13.3850)  # about 1.8 km north-west of HOME
M_PER_DEG_LAT = 111_250  # at 52° N on the WGS 84 spheroid, near enough for these margins
DAY = datetime(2026, 3, 10, tzinfo=UTC)


def north(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / M_PER_DEG_LAT, point[1]


def add(conn: Conn, user: str, points: list[tuple[datetime, dict[str, object]]]) -> list[int]:
    """Records of `user` in dataset visits; their ids in the order given."""
    ids = []
    for ts, doc in points:
        row = conn.execute(
            "INSERT INTO user_data.visits (user_id, ts, doc) VALUES (%s, %s, %s) RETURNING id",
            [user, ts, json.dumps({"ts": ts.isoformat(), **doc})],
        ).fetchone()
        assert row is not None
        ids.append(int(str(row[0])))
    return ids


def at(point: tuple[float, float]) -> dict[str, object]:
    return {"lat": point[0], "lon": point[1]}


@pytest.fixture
def visits(conn: Conn) -> str:
    """Dataset visits (lat, lon in degrees); users alice and bob, service gw."""
    conn.execute("SELECT lake.create_dataset('visits', %s, '{\"pii_scan\": false}')", [SCHEMA])
    conn.execute("SELECT lake.declare_coordinates('visits', 'lat', 'lon')")
    for user, kind in (("alice", "user"), ("bob", "user"), ("gw", "service")):
        conn.execute("SELECT lake.create_user(%s, NULL, %s)", [user, kind])
    return "visits"


def key_of(conn: Conn, principal: str) -> str:
    row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [principal]).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def app_as(db: str, conn: Conn) -> Iterator[Callable[[str], Lake]]:
    """Lake clients that log in as the test application and authenticate with the user's key."""
    opened: list[Lake] = []

    def open_as(user: str) -> Lake:
        lake = Lake(make_conninfo(db, user=APP_ROLE))
        lake.authenticate(key_of(conn, user))
        opened.append(lake)
        return lake

    yield open_as
    for lake in opened:
        lake.close()


def square(center: tuple[float, float], half_deg: float) -> dict[str, object]:
    lat, lon = center
    ring = [
        [lon - half_deg, lat - half_deg],
        [lon + half_deg, lat - half_deg],
        [lon + half_deg, lat + half_deg],
        [lon - half_deg, lat + half_deg],
        [lon - half_deg, lat - half_deg],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def test_near_and_within_see_only_the_callers_rows(
    conn: Conn, visits: str, app_as: Callable[[str], Lake], as_role: Callable[[str], Conn]
):
    # alice and bob at the same places: HOME, 100 m and 300 m north of it, and WORK.
    spots = [HOME, north(HOME, 100), north(HOME, 300), WORK]
    ids = {
        u: add(conn, u, [(DAY + timedelta(hours=i), at(p)) for i, p in enumerate(spots)])
        for u in ("alice", "bob")
    }
    bob = app_as("bob")
    found = bob.near(visits, *HOME, 150)
    assert [r["id"] for r in found] == ids["bob"][:2]  # nearest first
    assert found[0]["distance_m"] == pytest.approx(0, abs=0.01)
    assert found[1]["distance_m"] == pytest.approx(100, abs=1)
    assert (found[1]["place_lat"], found[1]["place_lon"]) == pytest.approx(north(HOME, 100))
    assert found[0]["ts"] == "2026-03-10T00:00:00.000000Z" and found[0]["doc"]["lat"] == HOME[0]
    assert [r["id"] for r in bob.near(visits, *HOME, 5000)] == ids["bob"]
    # The time range, and max_rows (the nearest).
    assert [r["id"] for r in bob.near(visits, *HOME, 5000, from_ts=DAY + timedelta(hours=2))] == (
        ids["bob"][2:]
    )
    assert [r["id"] for r in bob.near(visits, *HOME, 5000, max_rows=1)] == ids["bob"][:1]
    # A square of ±0.001° (about 110 m north-south) around HOME holds HOME and 100 m north.
    assert [r["id"] for r in bob.within(visits, square(HOME, 0.001))] == ids["bob"][:2]
    feature = {"type": "Feature", "properties": {}, "geometry": square(WORK, 0.01)}
    assert [r["id"] for r in bob.within(visits, feature)] == ids["bob"][3:]
    assert app_as("alice").within(visits, square(HOME, 0.01), to_ts=DAY + timedelta(hours=1)) == [
        {"id": ids["alice"][0], "ts": "2026-03-10T00:00:00.000000Z", "place_lat": HOME[0],
         "place_lon": HOME[1], "doc": {"ts": DAY.isoformat(), "lat": HOME[0], "lon": HOME[1]}}
    ]  # fmt: skip
    # A service finds nobody's until it acts for a user, then only that user's.
    svc = as_role(SERVICE_ROLE)
    svc.execute("SELECT lake.authenticate(%s, 'session')", [key_of(conn, "gw")])
    near_sql = "SELECT id FROM lake.near('visits', %s, %s, 5000) ORDER BY id"
    within_sql = "SELECT id FROM lake.within('visits', %s) ORDER BY id"
    area = json.dumps(square(HOME, 0.1))
    assert svc.execute(near_sql, HOME).fetchall() == []
    assert svc.execute(within_sql, [area]).fetchall() == []
    svc.autocommit = False
    svc.execute("SELECT lake.act_as('alice')")
    assert [r[0] for r in svc.execute(near_sql, HOME)] == ids["alice"]
    assert [r[0] for r in svc.execute(within_sql, [area])] == ids["alice"]
    svc.commit()
    # An administrator acting for bob: bob's.
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('bob', 'session')")
    assert [r[0] for r in adm.execute(near_sql, HOME)] == ids["bob"]


def test_e7_integers_nested_paths_and_records_without_a_place(
    conn: Conn, visits: str, as_role: Callable[[str], Conn]
):
    """Google Takeout's Records.json keeps latitudeE7 / longitudeE7 (degrees x 10^7); a field
    that is no number or out of range leaves the record stored and nowhere."""
    conn.execute(
        "SELECT lake.declare_coordinates('visits', 'loc.latitudeE7', 'loc.longitudeE7', 1e-7)"
    )
    e7 = {"latitudeE7": round(HOME[0] * 1e7), "longitudeE7": round(HOME[1] * 1e7)}
    good = add(conn, "alice", [(DAY, {"loc": e7})])
    add(conn, "alice", [
        (DAY, {"loc": {"latitudeE7": "525200000", "longitudeE7": 134050000}}),  # a string
        (DAY, {"loc": {"latitudeE7": 2_000_000_000, "longitudeE7": 0}}),  # 200°: out of range
        (DAY, {"lat": HOME[0], "lon": HOME[1]}),  # the old fields: no longer declared
    ])  # fmt: skip
    # A number beyond float8 (JSON has no limit): nowhere, and no error.
    expr = conn.execute("SELECT expression FROM lake.dataset_coordinates").fetchone()
    assert expr is not None
    huge = '{"loc": {"latitudeE7": 1e400, "longitudeE7": 0}}'
    assert conn.execute(
        f"SELECT {expr[0]} FROM (SELECT %s::jsonb AS doc) AS r", [huge]
    ).fetchone() == (None,)
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    rows = adm.execute("SELECT id, place_lat, place_lon FROM lake.near('visits', %s, %s, 10)", HOME)
    assert [(r[0], r[1], r[2]) for r in rows] == [(good[0], HOME[0], HOME[1])]
    count = conn.execute("SELECT count(*) FROM user_data.visits").fetchone()
    assert count == (4,)
    row = conn.execute(
        "SELECT lat_path, lon_path, scale FROM lake.dataset_coordinates WHERE dataset = 'visits'"
    ).fetchone()
    assert row is not None and row[0] == ["loc", "latitudeE7"] and row[1] == ["loc", "longitudeE7"]


def test_every_month_has_the_gist_index_and_the_searches_use_it(conn: Conn, visits: str):
    parts = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.visits'::regclass"
    ).fetchone()
    indexes = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.visits_place'::regclass"
    ).fetchone()
    assert parts is not None and parts[0] > 2 and indexes == parts
    # A month made later gets its own.
    conn.execute("SELECT lake.ensure_partitions('visits', now(), now() + interval '3 years')")
    after = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.visits'::regclass"
    ).fetchone()
    indexes = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.visits_place'::regclass"
    ).fetchone()
    assert after is not None and after[0] > parts[0] and indexes == after
    # The searches' condition is the index's expression: with sequential scans off, a plan
    # still reads the index only if the expression matches.
    row = conn.execute("SELECT expression FROM lake.dataset_coordinates").fetchone()
    assert row is not None
    march_only = "SELECT id FROM user_data.visits WHERE ts >= '2026-03-01' AND ts < '2026-04-01'"
    area = "public.st_geogfromtext('POLYGON((13 52,14 52,14 53,13 53,13 52))')"
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            f"EXPLAIN {march_only} AND"
            f" public.st_dwithin({row[0]}, 'SRID=4326;POINT(13.4 52.5)'::public.geography, 100)"
        ).fetchall()
        plan_within = conn.execute(
            f"EXPLAIN {march_only} AND public.st_covers({area}, {row[0]})"
        ).fetchall()
    march = conn.execute(
        "SELECT i.inhrelid::regclass::text FROM pg_inherits AS i"
        " JOIN pg_index AS x ON x.indexrelid = i.inhrelid"
        " WHERE i.inhparent = 'user_data.visits_place'::regclass"
        " AND x.indrelid = 'user_data_partitions.visits_p2026_03'::regclass"
    ).fetchone()
    assert march is not None
    for p in (plan, plan_within):
        assert f"using {march[0].split('.')[-1]} " in " ".join(str(r[0]) for r in p)


def test_stay_points_of_a_day(conn: Conn, visits: str, as_role: Callable[[str], Conn]):
    """alice: 40 minutes at HOME (a point every 5 minutes, a few metres apart), 20 minutes on
    the way, 60 minutes at WORK, 10 minutes at a café (too short). bob is at HOME all along:
    his points never count in her stays."""
    t = DAY + timedelta(hours=7)
    walk: list[tuple[datetime, dict[str, object]]] = []
    for i in range(9):  # 07:00-07:40 at home
        walk.append((t + timedelta(minutes=5 * i), at(north(HOME, (i % 3) * 10))))
    for i in range(1, 5):  # 07:45-08:00 on the way, ~400 m apart
        way = (HOME[0] + (WORK[0] - HOME[0]) * i / 5, HOME[1] + (WORK[1] - HOME[1]) * i / 5)
        walk.append((t + timedelta(minutes=40 + 5 * i), at(way)))
    for i in range(13):  # 08:05-09:05 at work
        walk.append((t + timedelta(minutes=65 + 5 * i), at(north(WORK, (i % 2) * 20))))
    cafe = north(WORK, 1000)
    for i in range(3):  # 09:20-09:30 at a café
        walk.append((t + timedelta(minutes=140 + 5 * i), at(cafe)))
    add(conn, "alice", walk)
    add(conn, "bob", [(t + timedelta(minutes=m), at(HOME)) for m in range(0, 180, 3)])

    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    rows = adm.execute(
        "SELECT started_at, ended_at, minutes, lat, lon, points"
        " FROM lake.stay_points('visits', %s, 15, 100)", [DAY.date()]
    ).fetchall()  # fmt: skip
    assert [(r[0], r[1], float(str(r[2])), r[5]) for r in rows] == [
        (t, t + timedelta(minutes=40), 40.0, 9),
        (t + timedelta(minutes=65), t + timedelta(minutes=125), 60.0, 13),
    ]
    assert (rows[0][3], rows[0][4]) == pytest.approx(north(HOME, 10), abs=1e-5)
    assert (rows[1][3], rows[1][4]) == pytest.approx(north(WORK, 20 * 6 / 13), abs=1e-5)
    # With 10 minutes, the café is a stay too.
    count = "SELECT count(*) FROM lake.stay_points('visits', %s, %s, 100, %s)"
    assert adm.execute(count, [DAY.date(), 10, "UTC"]).fetchone() == (3,)
    # The day is the calendar day of the time zone: 10 March in Honolulu (UTC-10) starts at
    # 10:00 UTC, after alice's morning, which falls on her 9 March there.
    assert adm.execute(count, [DAY.date(), 15, "Pacific/Honolulu"]).fetchone() == (0,)
    assert adm.execute(
        count, [DAY.date() - timedelta(days=1), 15, "Pacific/Honolulu"]
    ).fetchone() == (2,)
    # bob's own day: one stay of three hours.
    adm.execute("SELECT lake.act_as('bob', 'session')")
    mine = adm.execute("SELECT minutes, points FROM lake.stay_points('visits', %s)", [DAY.date()])
    assert [(float(str(r[0])), r[1]) for r in mine] == [(177.0, 60)]


def test_clear_errors(conn: Conn, visits: str, app_as: Callable[[str], Lake]):
    conn.execute("SELECT lake.create_dataset('plain', %s)", [SCHEMA])
    alice = app_as("alice")
    with pytest.raises(DatasetError, match="declares no coordinates"):
        alice.near("plain", *HOME, 100)
    with pytest.raises(InputError, match="lat 91"):
        alice.near(visits, 91, 0, 100)
    with pytest.raises(InputError, match="not an area"):
        alice.within(visits, {"type": "Point", "coordinates": [13.4, 52.5]})
    with pytest.raises(InputError, match="not an area"):
        alice.within(visits, {"type": "Polygon", "coordinates": "nonsense"})
    with pytest.raises(InputError, match="time_zone Mars/Olympus"):
        alice.stay_points(visits, "2026-03-10", time_zone="Mars/Olympus")
    admin = Lake(conn.info.dsn)
    try:
        with pytest.raises(DatasetError, match="invalid coordinates"):
            admin.declare_coordinates(visits, "lat", "lon", 0)
        with pytest.raises(DatasetError, match="invalid coordinates"):
            admin.declare_coordinates(visits, "loc..lat", "lon")
    finally:
        admin.close()


def test_postgis_is_3_4_or_newer(conn: Conn):
    row = conn.execute(
        "SELECT extversion, public.postgis_lib_version() FROM pg_extension"
        " WHERE extname = 'postgis'"
    ).fetchone()
    assert row is not None
    for version in row:
        major, minor = (int(x) for x in str(version).split(".")[:2])
        assert (major, minor) >= (3, 4)


def test_lake_up_refuses_a_postgis_older_than_3_4():
    check_postgis("3.5.2")
    check_postgis(None)  # not installed: `lake status` lists it as missing
    with pytest.raises(ClusterError, match=r"PostGIS 3\.3\.2 is installed") as refused:
        check_postgis("3.3.2")
    assert "make system" in str(refused.value.hint)


def test_lake_up_reads_the_version_of_the_installed_postgis(tmp_path: Path):
    """What `lake up` checks before starting: the postgis.control of the installation."""
    installed = postgis_installed(pg_bindir(Paths(tmp_path)))  # the newest installed major
    assert installed is not None
    check_postgis(installed)
    # An installation whose postgis.control is 3.3's.
    bindir, share = tmp_path / "bin", tmp_path / "share"
    (share / "extension").mkdir(parents=True)
    (share / "extension" / "postgis.control").write_text(
        "comment = 'PostGIS'\ndefault_version = '3.3.2'\nmodule_pathname = '$libdir/postgis-3'\n"
    )
    bindir.mkdir()
    (bindir / "pg_config").write_text(f"#!/bin/sh\necho {share}\n")
    (bindir / "pg_config").chmod(0o755)
    assert postgis_installed(bindir) == "3.3.2"
    with pytest.raises(ClusterError, match="make system"):
        check_postgis(postgis_installed(bindir))


def test_a_month_archived_before_the_declaration_comes_back_with_its_places(
    conn: Conn, visits: str, archive_dir: object, as_role: Callable[[str], Conn]
):
    """No column: a month archived before coordinates were declared restores after (same
    columns), and the restored month gets the GiST index on attaching. drop_dataset takes the
    declaration along."""
    conn.execute("SELECT lake.create_dataset('trips', %s, '{\"pii_scan\": false}')", [SCHEMA])
    ahead = "(date_trunc('month', now(), 'UTC') + interval '3 months 14 days')"
    oldest = (
        "greatest(lake.month_start(now() - interval '12 months') + interval '27 days',"
        " now() - interval '12 months' + interval '1 hour')"
    )
    conn.execute(
        "INSERT INTO user_data.trips (user_id, ts, doc) SELECT 'alice', t,"
        " jsonb_build_object('ts', t, 'lat', %s::float8, 'lon', %s::float8)"
        f" FROM (VALUES ({oldest}), (now())) AS v(t)",
        HOME,
    )
    ids = [int(str(r[0])) for r in conn.execute("SELECT id FROM user_data.trips ORDER BY ts")]
    report = conn.execute(f"CALL lake.apply_retention({ahead})").fetchone()
    assert report is not None and report[0]["datasets"]["trips"]["archived"] == 1  # type: ignore[index]
    conn.execute("SELECT lake.declare_coordinates('trips')")
    adm = as_role(ADMIN_ROLE)
    adm.execute("SELECT lake.act_as('alice', 'session')")
    near = "SELECT id FROM lake.near('trips', %s, %s, 10) ORDER BY id"
    assert [r[0] for r in adm.execute(near, HOME)] == ids[1:]

    month = conn.execute(f"SELECT lake.month_start({oldest})").fetchone()
    assert month is not None
    conn.execute(f"SELECT lake.restore_partition('trips', %s, {ahead})", [month[0]])
    assert [r[0] for r in adm.execute(near, HOME)] == ids
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'user_data.trips'::regclass),"
        " (SELECT count(*) FROM pg_inherits"
        "   WHERE inhparent = 'user_data.trips_place'::regclass)"
    ).fetchone()
    assert counts is not None and counts[0] == counts[1]

    conn.execute("SELECT lake.drop_dataset('trips', force => true)")
    assert conn.execute(
        "SELECT count(*) FROM lake.dataset_coordinates WHERE dataset = 'trips'"
    ).fetchone() == (0,)
