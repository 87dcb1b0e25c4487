"""Reading a record's time: lake.parse_times (one call for a statement's records) agrees with the
plain regular-expression reading it replaced, on the usual shapes it reads by their digits'
places and on every other; lake.parse_time is the same for one value; and the client, which
reads times itself to route records with COPY, agrees with the database wherever it decides."""

from __future__ import annotations

import random
import struct
from datetime import datetime, timedelta

import orjson
import psycopg
from psycopg.types.json import Jsonb

from lake_client.copy_ingest import _NO_TS, _PG_EPOCH, _fast_time, _Route

Conn = psycopg.Connection[tuple[object, ...]]

# The reading before lake.parse_times, kept here as the reference: one regular expression for
# every RFC 3339 text, then the day of the month, then the cast.
REFERENCE = r"""
CREATE FUNCTION pg_temp.reference(p_value jsonb) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT CASE WHEN jsonb_typeof(p_value) = 'string'
                  AND (p_value #>> '{}') ~ ('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])'
                                            '[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)'
                                            '([.][0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$')
            THEN CASE WHEN substr(p_value #>> '{}', 1, 4)::integer >= 1
                       AND substr(p_value #>> '{}', 9, 2)::integer <= extract(day FROM
                               make_date(substr(p_value #>> '{}', 1, 4)::integer,
                                         substr(p_value #>> '{}', 6, 2)::integer, 1)
                               + interval '1 month - 1 day')
                  THEN (p_value #>> '{}')::timestamptz
                  END
            END
$$
"""

EDGES = [
    "2026-11-27T08:15:00Z",
    "2026-11-27T08:15:00.123Z",
    "2026-11-27T08:15:00.1Z",
    "2026-11-27T08:15:00.123456789Z",
    "2026-11-27T08:15:00.1234567890Z",
    "2026-11-27t08:15:00z",
    "2026-11-27 08:15:00Z",
    "2026-11-27T08:15:00+01:00",
    "2026-11-27T08:15:00.5-15:59",
    "2026-11-27T08:15:00+16:00",
    "2026-11-27T08:15:00",
    "2026-11-27T08:15Z",
    "2026-00-27T08:15:00Z",
    "2026-13-27T08:15:00Z",
    "2026-12-00T08:15:00Z",
    "2026-12-31T23:59:59.999Z",
    "2026-12-32T08:15:00Z",
    "2026-02-29T08:15:00Z",
    "2028-02-29T08:15:00Z",
    "2026-04-31T08:15:00.000Z",
    "2026-11-27T24:00:00Z",
    "2026-11-27T23:60:00Z",
    "2026-11-27T23:59:60Z",
    "2026-12-31T23:59:60Z",
    "2026-11-27T23:59:61Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2026-11-27T08:15:00.12Z",
    "2026-11-27T08:15:00.123",
    "2026-11-27T08:15:00.Z",
    "2026-11-27T08:15:00.1234Z",
    "\uff12\uff10\uff12\uff16-11-27T08:15:00Z",  # full-width digits
    "2026-11-27T08:15:00Z ",
    " 2026-11-27T08:15:00Z",
    "2026/11/27T08:15:00Z",
    "",
    "Z",
]


def samples(n: int = 4000) -> list[object]:
    """The edges, then canonical times with one character changed, or cut short."""
    rng = random.Random(20261127)
    alphabet = "0123456789-:T tZz.+/a٣"
    out: list[object] = list(EDGES)
    for _ in range(n):
        when = datetime(2000, 1, 1) + timedelta(seconds=rng.randrange(40 * 365 * 86400))
        text = when.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(["Z", ".123Z", "+02:00"])
        roll = rng.random()
        if roll < 0.7:
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(alphabet) + text[i + 1 :]
        elif roll < 0.8:
            text = text[: rng.randrange(len(text))]
        out.append(text)
    return [*out, 12, None, True, {"a": 1}, ["2026-11-27T08:15:00Z"]]


def test_parse_times_reads_as_the_regular_expression_did(conn: Conn) -> None:
    conn.execute(REFERENCE)
    values = [Jsonb(v) for v in samples()]
    rows = conn.execute(
        "SELECT x.o, x.v, x.t, pg_temp.reference(x.v), lake.parse_time(x.v)"
        "  FROM unnest(%s::jsonb[], lake.parse_times(%s::jsonb[])) WITH ORDINALITY AS x(v, t, o)",
        [values, values],
    ).fetchall()
    assert len(rows) == len(values)
    differ = [(v, t, ref) for _, v, t, ref, one in rows if t != ref or one != t]
    assert differ == []
    read = sum(t is not None for _, _, t, _, _ in rows)
    assert 500 < read < len(rows) - 500  # both kinds are well represented


def test_parse_times_keeps_order_and_empty_input(conn: Conn) -> None:
    got = conn.execute(
        "SELECT lake.parse_times(ARRAY['\"2026-01-02T00:00:00Z\"', '1', '\"2026-01-01T00:00:00Z\"']"
        "::jsonb[]), lake.parse_times('{}'), lake.parse_times(ARRAY['1700000000000']::jsonb[],"
        " 'epoch_ms')"
    ).fetchone()
    assert got is not None
    assert [t and t.isoformat() for t in got[0]] == [
        "2026-01-02T00:00:00+00:00",
        None,
        "2026-01-01T00:00:00+00:00",
    ]
    assert got[1] == []
    assert got[2][0].timestamp() == 1_700_000_000


def test_the_client_reads_times_as_the_database_does(conn: Conn) -> None:
    """Where the client decides (a time, or surely none), lake.parse_time agrees."""
    route = _Route("ts", "rfc3339", 1_000_000)
    decided = 0
    for value in samples():
        start = _fast_time(orjson.dumps({"ts": value}), route)
        if start is None:
            continue  # the database decides
        decided += 1
        db = conn.execute("SELECT lake.parse_time(%s)", [Jsonb(value)]).fetchone()
        assert db is not None
        if start == _NO_TS:
            assert db[0] is None, value
        else:
            micros = struct.unpack(">hiq", start)[2]
            assert db[0] == _PG_EPOCH + timedelta(microseconds=micros), value
    assert decided > 3000


def _epoch_samples(fmt: str) -> list[object]:
    """Epoch values as numbers and as JSON strings of digits (Takeout's timestampMs), in range,
    at the edges and beyond, and strings that are not digits."""
    top = 253402300799999 if fmt == "epoch_ms" else 253402300799
    rng = random.Random(15)
    numbers = [0, 1, 999, 1000, top, top + 1, *(rng.randrange(0, top) for _ in range(300))]
    return [
        *numbers,
        *(str(n) for n in numbers),
        *(n / 7 for n in numbers[6:40]),  # fractions: numbers only
        "0001700000000",
        "",
        "-1",
        "+1700000000000",
        "1700000000000.5",
        "1.7e12",
        " 1700000000000",
        "1700000000000 ",
        "\u0661\u0667\u0660\u0660",  # digits, but not ASCII ones (Arabic-Indic)
        "9" * 21,
        -1,
        True,
        None,
        ["1700000000000"],
    ]


def test_parse_time_reads_epoch_strings_as_numbers(conn: Conn) -> None:
    for fmt in ("epoch_s", "epoch_ms"):
        got = conn.execute(
            "SELECT lake.parse_time('1700000000123'::jsonb, %(f)s),"
            "       lake.parse_time('\"1700000000123\"'::jsonb, %(f)s),"
            "       lake.parse_time('\"1700000000123.5\"'::jsonb, %(f)s),"
            "       lake.parse_time('\"-1\"'::jsonb, %(f)s),"
            "       lake.parse_time('\"\"'::jsonb, %(f)s),"
            "       lake.parse_times(ARRAY['\"1700000000000\"', '\"x\"', '1700000000000']::jsonb[],"
            "                        %(f)s)",
            {"f": fmt},
        ).fetchone()
        assert got is not None
        number, text, fraction, negative, empty, many = got
        if fmt == "epoch_ms":
            assert text == number and text.timestamp() == 1_700_000_000.123
        else:
            assert text is None and number is None  # beyond year 9999 in seconds
        assert fraction is None and negative is None and empty is None
        if fmt == "epoch_ms":
            assert many[0] == many[2] and many[0].timestamp() == 1_700_000_000 and many[1] is None


def test_the_client_reads_epoch_times_as_the_database_does(conn: Conn) -> None:
    """_fast_time and lake.parse_time agree on epoch numbers and strings of digits."""
    for fmt in ("epoch_s", "epoch_ms"):
        route = _Route("ts", fmt, 1_000_000)
        values = _epoch_samples(fmt)
        db = conn.execute(
            "SELECT lake.parse_times(%s::jsonb[], %s)", [[Jsonb(v) for v in values], fmt]
        ).fetchone()
        assert db is not None
        decided = read = 0
        for value, when in zip(values, db[0], strict=True):
            start = _fast_time(orjson.dumps({"ts": value}), route)
            if start is None:
                continue
            decided += 1
            if start == _NO_TS:
                assert when is None, (fmt, value)
            else:
                read += 1
                micros = struct.unpack(">hiq", start)[2]
                assert when == _PG_EPOCH + timedelta(microseconds=micros), (fmt, value)
        assert decided >= len(values) - 34  # fractions in range: the database decides
        assert read > 600  # numbers and strings of digits in range
