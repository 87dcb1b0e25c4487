"""DB-backed tests of lake_validate.compile: the SQL predicate is evaluated by PostgreSQL.

Soundness (the property the trigger relies on): whenever the predicate is TRUE the
document is valid according to explain(); whenever it is FALSE the document is invalid
(needed for not/oneOf to compose).  The predicate must never raise an SQL error.

The connection is the project's (the embedded cluster, or LAKE_DSN / PG*). Raise
LAKE_HYPOTHESIS_EXAMPLES for a long local run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

import psycopg
from lake_validate import compile_predicate, validator_for
from lake_validate.formats import FORMAT_CHECKERS, format_sql_regex, lake_search, translate
from lake_validate.values import json_text
from test_compile import (
    INTERESTING_STRINGS,
    PATTERNS,
    docs_for,
    json_values,
    object_schemas,
    schemas,
)

EXAMPLES = int(os.environ.get("LAKE_HYPOTHESIS_EXAMPLES", "60"))


# --------------------------------------------------------------------------- connection


@pytest.fixture(scope="module")
def conn(settings: Any) -> Iterator[Any]:
    """One autocommit connection for the module, to the lake's server (the project fixture
    `settings` starts the embedded cluster or names the external one)."""
    c = psycopg.connect(settings.dsn("postgres"), autocommit=True, connect_timeout=5)
    c.execute("SET statement_timeout = '20s'")
    enc = c.execute("SHOW server_encoding").fetchone()[0]
    assert enc == "UTF8", "lake databases are UTF8"
    yield c
    c.close()


# --------------------------------------------------------------------------- helpers


def _q(sql: str) -> str:
    """Escape % for psycopg's placeholder syntax."""
    return sql.replace("%", "%%")


def evaluate(conn: Any, expr: str, docs: list[Any]) -> list[tuple[bool | None, str]]:
    """Evaluate ``expr`` (over ``doc``) for each document; returns (result, doc::text)."""
    array = "[" + ",".join(json_text(d) for d in docs) + "]"
    query = (
        "SELECT t.ord, t.doc::text, (" + _q(expr) + ") "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(doc, ord) ORDER BY t.ord"
    )
    rows = conn.execute(query, (array,)).fetchall()
    return [(r[2], r[1]) for r in rows]


def representable(doc: Any) -> bool:
    try:
        json_text(doc)
    except ValueError:
        return False
    return True


def check_sound(conn: Any, schema: Any, docs: list[Any]) -> dict[str, int]:
    """Assert soundness of the compiled predicate on ``docs``; return outcome counts."""
    docs = [d for d in docs if representable(d)]
    counts = {"true": 0, "false": 0, "null": 0}
    expr = compile_predicate(schema)
    if expr is None or not docs:
        return counts
    v = validator_for(
        ("test", json_text(schema) if representable(schema) else repr(schema)), schema
    )
    for result, text in evaluate(conn, expr, docs):
        reasons = v.explain_text(text)
        if result is True:
            counts["true"] += 1
            assert reasons == [], (schema, text, expr)
        elif result is False:
            counts["false"] += 1
            assert reasons != [], (schema, text, expr)
        else:
            counts["null"] += 1
        # the production path (fast path first) agrees with the slow path
        assert v.explain_many([text]) == [reasons], (schema, text)
    return counts


# --------------------------------------------------------------------------- fixed cases

LOCATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["ts", "lat", "lon"],
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": "number", "minimum": 0},
        "source": {"enum": ["gps", "wifi", "cell"]},
        "activity": {"type": "string", "maxLength": 32},
    },
}


def test_location_schema_exact(conn: Any) -> None:
    ok = {"ts": "2025-01-31T12:00:00Z", "lat": 1, "lon": 2}
    docs = [
        ok,
        {**ok, "lat": Decimal("90")},
        {**ok, "lat": Decimal("90.00000000000000000001")},
        {**ok, "lat": Decimal("-90.0")},
        {**ok, "lat": "1"},
        {**ok, "lat": None},
        {**ok, "lat": [1]},
        {**ok, "lat": []},
        {**ok, "lat": {}},
        {**ok, "lat": True},
        {**ok, "lat": False},
        {**ok, "lon": Decimal("-180.0000")},
        {**ok, "source": []},
        {**ok, "source": {"gps": 1}},
        {**ok, "source": True},
        {**ok, "source": ["gps"]},
        {**ok, "source": "gps"},
        {**ok, "source": "GPS"},
        {**ok, "source": 1},
        {**ok, "source": None},
        {**ok, "activity": "é" * 32},
        {**ok, "activity": "é" * 33},
        {**ok, "activity": "😀" * 32},
        {**ok, "accuracy_m": 0},
        {**ok, "accuracy_m": Decimal("-1E-20")},
        {**ok, "ts": "2025-01-31 12:00:00Z"},
        {k: v for k, v in ok.items() if k != "lon"},
        [ok],
        "text",
        None,
        {},
    ]
    counts = check_sound(conn, LOCATION, docs)
    assert counts["null"] == 0  # exact for these keywords
    assert counts["true"] == 8


def test_hostile_property_names(conn: Any) -> None:
    names = ["it's", 'quo"te', "back\\slash", "$$", "$1$", "%s", "ünï", "😀", "", " ", "a'b''c"]
    schema = {
        "type": "object",
        "properties": {n: {"type": "integer", "maximum": 5} for n in names},
        "required": names[:3],
        "additionalProperties": False,
    }
    base = {n: 1 for n in names}
    docs = [base, {**base, "extra": 1}, {**base, "it's": 6}, {**base, "$$": Decimal("1.5")}]
    docs += [{k: v for k, v in base.items() if k != n} for n in names]
    counts = check_sound(conn, schema, docs)
    assert counts["null"] == 0
    assert counts["true"] == 1 + len(names) - 3


def test_numbers_extreme(conn: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number", "maximum": 1e308},
            "i": {"type": "integer"},
            "m": {"multipleOf": 0.01},
            "e": {"enum": [0.1, 1e308, 12345678901234567890]},
        },
    }
    vals = [
        Decimal("1E+308"),
        Decimal("1.0000000000000000001E+308"),
        Decimal("12345678901234567890.123456789"),
        12345678901234567890,
        Decimal("1E+400"),
        Decimal("-1E+400"),
        Decimal("1E-300"),
        Decimal("0.1"),
        Decimal("0.10000000000000000001"),
        Decimal("2.50"),
        Decimal("3.001"),
        Decimal("7.0"),
        10**1000,
    ]
    docs = [{k: x} for x in vals for k in ("n", "i", "m", "e")]
    counts = check_sound(conn, schema, docs)
    assert counts["true"] > 0 and counts["false"] > 0


def test_unicode_and_big_strings(conn: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^é"},
            "t": {"type": "string", "maxLength": 1_000_000},
        },
    }
    docs = [
        {"s": "éa"},
        {"s": "éab"},
        {"s": "éabc"},
        {"s": "é😀"},
        {"s": "aé"},
        {"t": "x" * 1_000_001},
        {"t": "😀" * 1_000_000},
        {"s": "é\n"},
        {"s": "\u2028é"},
    ]
    counts = check_sound(conn, schema, docs)
    assert counts["null"] == 0


def test_refs_and_recursion(conn: Any) -> None:
    schema = {
        "type": "object",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                },
                "required": ["v"],
            },
            "a b": {"type": "string"},
        },
        "properties": {
            "root": {"$ref": "#/definitions/node"},
            "s": {"$ref": "#/definitions/a%20b"},
        },
    }
    leaf = {"v": 1}
    docs = [
        {"root": leaf},
        {"root": {"v": 1, "kids": [leaf, {"v": 2, "kids": [leaf]}]}},
        {"root": {"v": 1, "kids": [{"v": "x"}]}},
        {"root": {"v": 1, "kids": [{"v": 1, "kids": [{"v": 1, "kids": [{"v": "deep"}]}]}]}},
        {"root": {"v": 1, "kids": [{"v": 1, "kids": [{"v": 1, "kids": [{"v": 2}]}]}]}},
        {"s": "x"},
        {"s": 1},
    ]
    check_sound(conn, schema, docs)


def test_partial_knowledge_composes(conn: Any) -> None:
    """Inexact (\\d) and undecidable (lookahead) patterns give NULL, never a wrong answer,
    also under not/oneOf/anyOf/if."""
    inexact = {"type": "string", "pattern": "^\\d+$"}
    opaque = {"type": "string", "pattern": "^(?!x)"}
    schema = {
        "type": "object",
        "properties": {
            "a": {"not": inexact},
            "b": {"oneOf": [inexact, {"maxLength": 2}]},
            "c": {"anyOf": [opaque, {"type": "integer"}]},
            "d": {"if": inexact, "then": {"maxLength": 3}, "else": {"minLength": 1}},
            "e": {"items": inexact, "contains": opaque},
        },
    }
    values = ["123", "\u0661\u0662", "abc", "x", "", "12", 5, Decimal("5.5")]
    docs = [{k: v} for k in "abcd" for v in values] + [{"e": values}, {"e": ["1", "2"]}, {"e": []}]
    counts = check_sound(conn, schema, docs)
    assert counts["null"] > 0 and counts["true"] > 0 and counts["false"] > 0


def test_formats_sql_equals_python(conn: Any) -> None:
    samples = [
        *INTERESTING_STRINGS,
        "2024-02-29T23:59:60.5-23:59",
        "0000-01-01T00:00:00Z",
        "2025-01-31T12:34:56.Z",
        "2025-01-31T12:34:56+2:00",
        "x@y",
        "a..b@c.d",
        "a@b-.c",
        "A1@b.co",
        "123E4567-E89B-12D3-A456-426614174000",
        "123e4567e89b12d3a456426614174000",
        "0.0.0.0",
        "255.255.255.255",
        "1.2.3",
        "1:2:3:4:5:6:7:8",
        "1::",
        "::",
        "1:2:3:4:5:6:1.2.3.4",
        "fe80::1%eth0",
        ":::",
        "1::2::3",
        "12345::",
    ]
    for name in FORMAT_CHECKERS:
        rx = format_sql_regex(name)
        assert rx is not None
        rows = conn.execute(
            "SELECT s, s ~ %s FROM unnest(%s::text[]) AS s", (rx, samples)
        ).fetchall()
        for s, matched in rows:
            assert matched == FORMAT_CHECKERS[name](s), (name, s)


def test_ipv6_regex_matches_ipaddress_module(conn: Any) -> None:
    import ipaddress
    import random

    rnd = random.Random(7)
    samples = []
    for _ in range(400):
        a = ipaddress.IPv6Address(rnd.getrandbits(128) & ~((1 << rnd.randrange(0, 128)) - 1))
        samples += [str(a), a.exploded, str(a).upper()]
        if rnd.random() < 0.3:
            samples.append(str(a) + ":1")
            samples.append(str(a).replace(":", "::", 1))
        v4 = ipaddress.IPv4Address(rnd.getrandbits(32))
        samples.append("::ffff:" + str(v4))
        samples.append("1:2:3:4:5:6:" + str(v4))
    check = FORMAT_CHECKERS["ipv6"]
    for s in samples:
        try:
            ipaddress.IPv6Address(s)
            expected = "%" not in s
        except ValueError:
            expected = False
        assert check(s) == expected, s
    rows = conn.execute(
        "SELECT s, s ~ %s FROM unnest(%s::text[]) AS s", (format_sql_regex("ipv6"), samples)
    ).fetchall()
    for s, matched in rows:
        assert matched == check(s), s


# --------------------------------------------------------------------------- regex translation

regex_atoms = st.sampled_from(
    [
        "a",
        "b",
        "é",
        "😀",
        ".",
        "\\d",
        "\\w",
        "\\s",
        "[a-c]",
        "[^a]",
        "[\\]\\-^]",
        "[-x]",
        "\\.",
        "\\$",
        "\\\\",
        "\\n",
        "\\u00e9",
        "\\x41",
        "'",
        "%",
        " ",
        "-",
        ",",
        "#",
    ]
)
regex_quant = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{0,}"])


@st.composite
def regexes(draw: Any) -> str:
    def seq(depth: int) -> str:
        out = []
        for _ in range(draw(st.integers(1, 4))):
            if depth < 2 and draw(st.integers(0, 5)) == 0:
                alts = [seq(depth + 1) for _ in range(draw(st.integers(1, 3)))]
                atom = "(" + draw(st.sampled_from(["", "?:"])) + "|".join(alts) + ")"
            else:
                atom = draw(regex_atoms)
            out.append(atom + draw(regex_quant))
        return "".join(out)

    body = "|".join(seq(0) for _ in range(draw(st.integers(1, 2))))
    start: str = draw(st.sampled_from(["", "^"]))
    end: str = draw(st.sampled_from(["", "$"]))
    return start + body + end


regex_subjects = st.lists(
    st.text(alphabet=st.sampled_from([*"abé😀 .-\\\n$%'#,A_\t]^", "\u0661"]), max_size=8),
    max_size=12,
)


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=regexes(), subjects=regex_subjects)
def test_regex_translation_agrees(conn: Any, pattern: str, subjects: list[str]) -> None:
    tr = translate(pattern)
    if tr is None:
        # the only construct of this generator that is refused on purpose
        assert "\\\\$" in pattern, pattern
        return
    are, exact = tr
    subjects = [*subjects, "", "a", "ab", "a\n", "aé"]
    rows = conn.execute(
        "SELECT s, s ~ %s FROM unnest(%s::text[]) AS s", (are or "", subjects)
    ).fetchall()
    for s, matched in rows:
        py = lake_search(pattern, s)
        if exact:
            assert matched == py, (pattern, are, s)
        else:
            assert not matched or py, (pattern, are, s)


def test_fixed_patterns_translate_and_agree(conn: Any) -> None:
    for p in PATTERNS:
        tr = translate(p)
        if tr is None:
            continue
        rows = conn.execute(
            "SELECT s, s ~ %s FROM unnest(%s::text[]) AS s", (tr[0], INTERESTING_STRINGS)
        ).fetchall()
        for s, matched in rows:
            py = lake_search(p, s)
            assert (matched == py) if tr[1] else (not matched or py), (p, s)


# --------------------------------------------------------------------------- property tests


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_predicate_sound_random_schemas(conn: Any, data: Any) -> None:
    schema = data.draw(schemas, label="schema")
    docs = data.draw(st.lists(docs_for(schema), min_size=1, max_size=25), label="docs")
    check_sound(conn, schema, docs)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_predicate_sound_object_schemas(conn: Any, data: Any) -> None:
    schema = data.draw(object_schemas(), label="schema")
    docs = data.draw(st.lists(docs_for(schema), min_size=1, max_size=25), label="docs")
    check_sound(conn, schema, docs)


@settings(
    max_examples=max(10, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(docs=st.lists(json_values, min_size=1, max_size=30))
def test_predicate_never_errors_on_hostile_docs(conn: Any, docs: list[Any]) -> None:
    check_sound(conn, LOCATION, docs)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    lo=st.sampled_from([-90, -0.5, 0, 1e-5, 2]),
    hi=st.sampled_from([0, 0.5, 2, 90, 1e308]),
    lo_kw=st.sampled_from(["minimum", "exclusiveMinimum"]),
    hi_kw=st.sampled_from(["maximum", "exclusiveMaximum"]),
    enum=st.lists(st.sampled_from(["gps", "1", "true", "[x", "-2.5", "é", ""]), min_size=1),
    required=st.booleans(),
    values=st.lists(json_values, min_size=1, max_size=15),
)
def test_single_type_idioms_sound(
    conn: Any,
    lo: Any,
    hi: Any,
    lo_kw: str,
    hi_kw: str,
    enum: list[str],
    required: bool,
    values: list[Any],
) -> None:
    """The one-lookup idioms (jsonb-ordered BETWEEN, text enum) against hostile values."""
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number", lo_kw: lo, hi_kw: hi},
            "s": {"enum": enum},
        },
        "required": ["n", "s"] if required else [],
    }
    docs: list[Any] = [{"n": v, "s": v} for v in values] + [{"n": v} for v in values]
    docs += [{"s": v} for v in [*enum, -2.5, 1, True, ["gps"], None]] + [{}]
    check_sound(conn, schema, docs)
