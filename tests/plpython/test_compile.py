"""Unit tests for lake_validate.compile (pure Python, no database), and the hypothesis
strategies shared by the lake_validate test files (schemas of the supported subset and
documents: valid, near-valid, hostile)."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

from lake_validate import compile_predicate, jsonb_literal, quote_ident, quote_literal
from lake_validate.formats import (
    FORMAT_CHECKERS,
    FORMAT_PATTERNS,
    format_sql_regex,
    lake_search,
    translate,
)
from lake_validate.values import loads, numeric_literal

pytestmark = pytest.mark.fast  # needs no server (tests/conftest.py)

# =========================================================================== strategies

# Property names that are hostile for SQL/JSON/Python code generation.
HOSTILE_KEYS = [
    "a",
    "b",
    "lat",
    "it's",
    'quo"te',
    "back\\slash",
    "$$",
    "$1",
    "%s",
    "{x}",
    "ünï©ødé",
    "😀",
    "",
    " ",
    "a.b",
    "1",
    "--",
    "e1",
    "new\nline",
    "tab\t",
    "?",
    "?&",
]

INTERESTING_NUMBERS: list[Any] = [
    0,
    1,
    -1,
    2,
    3,
    7,
    90,
    -90,
    180,
    Decimal("1.0"),
    Decimal("0.5"),
    Decimal("-0.5"),
    Decimal("0.1"),
    Decimal("0.3"),
    Decimal("89.999999999999999999999"),
    Decimal("90.00000000000000000001"),
    Decimal("-90.0"),
    Decimal("1E+308"),
    Decimal("1E+400"),
    Decimal("-1E+308"),
    Decimal("12345678901234567890.123456789"),
    12345678901234567890,
    2**53 + 1,
    Decimal("1E-20"),
    Decimal("0.01"),
    Decimal("2.50"),
    Decimal("-0.0"),
]

INTERESTING_STRINGS = [
    "",
    "a",
    "gps",
    "wifi",
    "abc",
    "ABC",
    "a\n",
    "\n",
    "1",
    "true",
    "null",
    "{}",
    "[1]",
    "x" * 40,
    "é" * 5,
    "😀😀",
    "it's",
    "back\\slash",
    "2025-01-31T12:34:56Z",
    "2025-01-31T12:34:56.123+02:00",
    "2025-13-31T12:34:56Z",
    "2025-01-31t12:34:56z",
    "2025-01-31 12:34:56Z",
    "2025-01-31T12:34:56Z\n",
    "2025-01-31",
    "12:34:56Z",
    "24:00:00Z",
    "user@example.com",
    "a.b@c.d",
    "not an email",
    "123e4567-e89b-12d3-a456-426614174000",
    "192.168.0.1",
    "256.1.1.1",
    "01.2.3.4",
    "::1",
    "2001:db8::8a2e:370:7334",
    "::ffff:192.0.2.1",
    "1:2:3:4:5:6:7:8:9",
    "١٢٣",  # Arabic-Indic digits: \\d in Python, not [0-9]
    "ab12",
    "a-b_c",
    "$",
    "%",
]

PATTERNS = [
    "^a",
    "a$",
    "^[a-z]+$",
    "^[A-Za-z0-9_-]{1,5}$",
    "b",
    "^(gps|wifi)$",
    "^\\d+$",
    "\\w",
    "^\\s*$",
    "^.{2,3}$",
    "[^a-c]",
    "^\\$",
    "\\.",
    "^[0-9]{4}-[0-9]{2}",
    "(?=a)a",  # lookahead: not translatable
    "^a|b$",
    "^(?:ab)*$",
    "é",
    "^[^\\n]*$",
    "x{2}",
    "",
]

FORMATS = ["date-time", "date", "time", "email", "uuid", "ipv4", "ipv6", "uri", "hostname", "xyz"]

TYPE_NAMES = ["object", "array", "string", "number", "integer", "boolean", "null"]

numbers = st.sampled_from(INTERESTING_NUMBERS) | st.integers(-1000, 1000)
strings = st.sampled_from(INTERESTING_STRINGS) | st.text(max_size=6)
keys = st.sampled_from(HOSTILE_KEYS)

json_scalars = st.one_of(st.none(), st.booleans(), numbers, strings)

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=12,
)

# Schema constants: values a schema might name in enum/const.
schema_consts = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(INTERESTING_NUMBERS[:12]),
        st.sampled_from(INTERESTING_STRINGS[:16]),
    ),
    lambda c: st.lists(c, max_size=2) | st.dictionaries(keys, c, max_size=2),
    max_leaves=4,
)

schema_numbers = st.sampled_from(
    [0, 1, -1, 2, 5, 90, -90, 180, 0.5, -0.5, 0.1, 89.5, 1e308, -1e308, 1e-5, 2.5]
)


def _type_kw() -> st.SearchStrategy[Any]:
    return st.sampled_from(TYPE_NAMES) | st.lists(
        st.sampled_from(TYPE_NAMES), min_size=1, max_size=3, unique=True
    )


def leaf_schemas() -> st.SearchStrategy[Any]:
    kw: dict[str, st.SearchStrategy[Any]] = {
        "type": _type_kw(),
        "enum": st.lists(schema_consts, min_size=1, max_size=4),
        "const": schema_consts,
        "minimum": schema_numbers,
        "maximum": schema_numbers,
        "exclusiveMinimum": schema_numbers,
        "exclusiveMaximum": schema_numbers,
        "multipleOf": st.sampled_from([1, 2, 3, 0.5, 0.01, 0.1, 1.5]),
        "minLength": st.integers(0, 5),
        "maxLength": st.integers(0, 40),
        "pattern": st.sampled_from(PATTERNS),
        "format": st.sampled_from(FORMATS),
        "minItems": st.integers(0, 3),
        "maxItems": st.integers(0, 4),
        "uniqueItems": st.booleans(),
        "minProperties": st.integers(0, 3),
        "maxProperties": st.integers(0, 4),
        "required": st.lists(keys, max_size=3, unique=True),
        "title": st.text(max_size=5),
    }
    return st.fixed_dictionaries({}, optional=kw).map(_drop_some)


def _drop_some(d: dict[str, Any]) -> dict[str, Any]:
    # Keep schemas small: at most 4 keywords.
    return dict(list(d.items())[:4])


def _compound(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    opt: dict[str, st.SearchStrategy[Any]] = {
        "properties": st.dictionaries(keys, children, max_size=3),
        "additionalProperties": st.booleans() | children,
        "patternProperties": st.dictionaries(st.sampled_from(PATTERNS[:8]), children, max_size=2),
        "propertyNames": children,
        "dependencies": st.dictionaries(
            keys, st.lists(keys, max_size=2, unique=True) | children, max_size=2
        ),
        "items": children | st.lists(children, min_size=1, max_size=2),
        "additionalItems": st.booleans() | children,
        "contains": children,
        "allOf": st.lists(children, min_size=1, max_size=2),
        "anyOf": st.lists(children, min_size=1, max_size=3),
        "oneOf": st.lists(children, min_size=1, max_size=3),
        "not": children,
        "if": children,
        "then": children,
        "else": children,
    }
    return st.tuples(leaf_schemas(), st.fixed_dictionaries({}, optional=opt)).map(
        lambda t: {**t[0], **dict(list(t[1].items())[:3])}
    )


schemas = st.recursive(
    st.booleans() | leaf_schemas(),
    _compound,
    max_leaves=6,
)


def object_schemas() -> st.SearchStrategy[Any]:
    """Top-level dataset schemas: objects with properties (what the lake stores)."""
    return st.builds(
        lambda props, req, extra: {
            "type": "object",
            "properties": props,
            "required": [k for k in req if k in props],
            **extra,
        },
        st.dictionaries(keys, schemas, min_size=1, max_size=4),
        st.lists(keys, max_size=3, unique=True),
        st.fixed_dictionaries({}, optional={"additionalProperties": st.booleans() | schemas}),
    )


def docs_for(schema: Any) -> st.SearchStrategy[Any]:
    """Documents biased towards the schema's own property names and constants."""
    prop_keys: list[str] = []
    consts: list[Any] = []
    stack = [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, dict):
            for k, v in s.items():
                if k == "properties" and isinstance(v, dict):
                    prop_keys.extend(v.keys())
                    stack.extend(v.values())
                elif k in ("enum",) and isinstance(v, list):
                    consts.extend(v)
                elif k == "const":
                    consts.append(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(s, list):
            stack.extend(s)
    key_st = st.sampled_from(prop_keys) if prop_keys else keys
    scalar = json_scalars
    if consts:
        scalar = scalar | st.sampled_from(consts)
    values = st.recursive(
        scalar,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(key_st | keys, c, max_size=5),
        max_leaves=14,
    )
    return st.dictionaries(key_st, values, max_size=6) | values


# =========================================================================== tests

LOCATION = {
    "type": "object",
    "required": ["ts", "lat", "lon"],
    "properties": {
        "ts": {"type": "string"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": "number", "minimum": 0},
        "source": {"enum": ["gps", "wifi", "cell"]},
        "activity": {"type": "string", "maxLength": 32},
    },
}


# --------------------------------------------------------------------------- quoting

unicode_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=40,
)


@given(unicode_text)
def test_quote_literal_roundtrip(s: str) -> None:
    lit = quote_literal(s)
    assert lit[0] == lit[-1] == "'"
    inner = lit[1:-1]
    # every quote inside is doubled, so the literal cannot end early
    assert re.fullmatch(r"(?:[^']|'')*", inner, re.S)
    assert inner.replace("''", "'") == s


def test_quote_literal_hostile() -> None:
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("\\") == "'\\'"  # standard_conforming_strings: backslash is plain
    assert quote_literal("$$") == "'$$'"
    assert quote_literal("'; DROP TABLE x; --") == "'''; DROP TABLE x; --'"
    assert quote_ident('a"b') == '"a""b"'
    with pytest.raises(ValueError):
        quote_literal("a\x00b")
    with pytest.raises(ValueError):
        quote_literal("\ud800")


def test_jsonb_literal() -> None:
    assert (
        jsonb_literal({"it's": [1, 0.5, None, True]}) == """'{"it''s":[1,0.5,null,true]}'::jsonb"""
    )
    assert jsonb_literal(Decimal("1E+3")) == "'1000'::jsonb"
    assert jsonb_literal(1e308) == "'1" + "0" * 308 + "'::jsonb"
    with pytest.raises(ValueError):
        jsonb_literal("\x00")


def test_numeric_literal() -> None:
    assert numeric_literal(1e308) == "1" + "0" * 308
    assert numeric_literal(Decimal("12345678901234567890.123456789")) == (
        "12345678901234567890.123456789"
    )
    assert numeric_literal(0.1) == "0.1"
    assert numeric_literal(Decimal("1E-20")) == "0.00000000000000000001"
    assert numeric_literal(Decimal("1E+5000")) is None
    assert numeric_literal(float("inf")) is None
    assert numeric_literal(True) is None


def test_loads_exact_numbers() -> None:
    doc = loads('{"a": 12345678901234567890.123456789, "b": 1.0, "c": 7, "d": 1' + "0" * 5000 + "}")
    assert doc["a"] == Decimal("12345678901234567890.123456789")
    assert doc["b"] == 1 and isinstance(doc["b"], Decimal)
    assert doc["c"] == 7 and isinstance(doc["c"], int)
    assert doc["d"] == Decimal(10) ** 5000


# --------------------------------------------------------------------------- regex translation


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("^abc$", ("^abc$", True)),
        ("a.b", ("a[^\\n]b", True)),
        ("^\\d{4}$", ("^[0-9]{4}$", False)),
        ("[^a-c]", ("[^a-c]", True)),
        ("(a|b)+", ("(?:a|b)+", True)),
        ("it's", ("it\\'s", True)),
        ("\\$", ("\\$", True)),
        ("", ("", True)),
    ],
)
def test_translate_cases(pattern: str, expected: tuple[str, bool]) -> None:
    assert translate(pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(?=a)",
        "(?i)a",
        "a*?",
        "a++",
        "\\bword",
        "\\D",
        "[^\\d]",
        "a{,3}",
        "a{300}",
        "(a",
        "[$]",
        "\\\\$",
        "[]a]",
        "a{x}",
        "\\1",
        "(?P<n>a)",
        "\\Z",
        "a|",
        "()",
    ],
)
def test_translate_unsupported(pattern: str) -> None:
    assert translate(pattern) is None


def test_format_patterns_are_exactly_translatable() -> None:
    for name, body in FORMAT_PATTERNS.items():
        tr = translate(body)
        assert tr is not None and tr[1], name
        assert format_sql_regex(name) == "^(?:" + tr[0] + ")$"
    assert format_sql_regex("uri") is None


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        (
            "date-time",
            [
                "2025-01-31T12:34:56Z",
                "2025-01-31T23:59:60.123456+05:30",
                "0001-12-01T00:00:00-00:00",
            ],
            [
                "2025-01-31t12:34:56Z",
                "2025-01-31 12:34:56Z",
                "2025-01-31T12:34:56",
                "2025-1-31T1:2:3Z",
                "2025-01-31T12:34:56Z\n",
                "2025-00-31T12:34:56Z",
                "2025-01-32T12:34:56Z",
            ],
        ),
        ("date", ["2025-01-31", "2024-02-29"], ["2025-1-31", "20250131", "2025-01-31T00:00:00Z"]),
        ("time", ["12:34:56Z", "23:59:60.5+01:00"], ["12:34:56", "24:00:00Z", "12:34Z"]),
        (
            "email",
            ["a@b.co", "first.last+tag@sub.example.org"],
            ["a@b", "a..b@c.d", "@b.c", "a b@c.d"],
        ),
        ("uuid", ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000"]),
        ("ipv4", ["0.0.0.0", "255.255.255.255", "10.1.2.3"], ["256.0.0.1", "01.2.3.4", "1.2.3"]),
        (
            "ipv6",
            ["::1", "::", "2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8"],
            ["1:2:3:4:5:6:7:8:9", "1::2::3", ":::", "12345::", "fe80::1%eth0"],
        ),
    ],
)
def test_format_checkers(fmt: str, good: list[str], bad: list[str]) -> None:
    check = FORMAT_CHECKERS[fmt]
    for s in good:
        assert check(s), s
    for s in bad:
        assert not check(s), s
    assert check(12)  # formats only constrain strings


def test_lake_pattern_dollar_is_end_of_string() -> None:
    assert lake_search("^a$", "a")
    assert not lake_search("^a$", "a\n")  # ECMA-like, as fastjsonschema does
    assert lake_search("\\$", "$")


# --------------------------------------------------------------------------- compile


def test_location_predicate_shape() -> None:
    sql = compile_predicate(LOCATION)
    assert sql is not None
    # each property is looked up at most twice (type test + value)
    for key in ("lat", "lon", "accuracy_m", "activity", "source"):
        assert sql.count(f"-> '{key}'") + sql.count(f"->> '{key}'") <= 2, key
    assert "?& ARRAY['ts', 'lat', 'lon']" in sql
    assert "((doc) -> 'lat') BETWEEN '-90'::jsonb AND '90'::jsonb" in sql
    assert "coalesce(((doc) ->> 'source') = ANY (ARRAY['gps', 'wifi', 'cell']::text[])" in sql
    # optional or integer ranges use the numeric cast inside the type branch
    sql = compile_predicate({"properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}})
    assert sql is not None and "::numeric <@ '[0,9]'::numrange" in sql and "min_scale" in sql
    # enum strings that could be the text of a number/boolean keep the type test
    sql = compile_predicate({"properties": {"e": {"enum": ["1", "true", "x"]}}})
    assert sql is not None and "CASE jsonb_typeof((doc) -> 'e') WHEN 'string'" in sql
    assert sql.startswith("CASE jsonb_typeof(doc) WHEN 'object' THEN")


def test_doc_expr_is_used() -> None:
    sql = compile_predicate({"type": "object", "required": ["a"]}, "t.payload")
    assert sql == "CASE jsonb_typeof(t.payload) WHEN 'object' THEN (t.payload) ? 'a' ELSE FALSE END"
    with pytest.raises(ValueError):
        compile_predicate({}, "")


@pytest.mark.parametrize(
    ("schema", "expected"),
    [(True, "TRUE"), (False, "FALSE"), ({}, "TRUE"), ({"title": "x", "description": "y"}, "TRUE")],
)
def test_trivial_schemas(schema: Any, expected: str) -> None:
    assert compile_predicate(schema) == expected


@pytest.mark.parametrize(
    "schema",
    [
        5,
        "object",
        {"type": "objekt"},
        {"minimum": "1"},
        {"maxLength": -1},
        {"maxLength": 1.5},
        {"required": "a"},
        {"properties": []},
        {"allOf": []},
        {"items": 3},
        {"multipleOf": 0},
        {"enum": "a"},
        {"pattern": 5},
        {"minimum": float("nan")},
    ],
)
def test_invalid_schemas_give_none(schema: Any) -> None:
    assert compile_predicate(schema) is None


def test_deep_schema_gives_none() -> None:
    s: Any = {"type": "integer"}
    for _ in range(100):
        s = {"type": "object", "properties": {"a": s}}
    assert compile_predicate(s) is None
    s = {"type": "integer"}
    for _ in range(20):
        s = {"type": "object", "properties": {"a": s}}
    assert compile_predicate(s) is not None


def test_ref_fanout_is_bounded() -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/definitions/d{i + 1}"}] * 3} for i in range(30)
    }
    defs["d30"] = {"type": "string"}
    schema = {"definitions": defs, "$ref": "#/definitions/d0"}
    assert compile_predicate(schema) is None  # would be 3**30 nodes


def test_unsupported_constructs_degrade_to_null() -> None:
    sql = compile_predicate({"type": "object", "properties": {"a": {"pattern": "(?=x)"}}})
    assert sql is not None and "NULL::boolean" in sql
    # recursion is unrolled twice, then unknown
    sql = compile_predicate({"properties": {"a": {"$ref": "#"}}})
    assert sql is not None and "NULL::boolean" in sql


def test_unresolvable_refs_give_none() -> None:
    # remote refs are never fetched; explain() reports the schema as broken
    assert compile_predicate({"properties": {"a": {"$ref": "http://example.com/s.json"}}}) is None
    assert compile_predicate({"properties": {"a": {"$ref": "#/definitions/nope"}}}) is None
    nested_id = {
        "definitions": {"x": {"$id": "http://x/", "type": "string"}},
        "$ref": "#/definitions/x",
    }
    assert compile_predicate(nested_id) is None


def test_keys_jsonb_cannot_hold() -> None:
    assert (
        compile_predicate({"type": "object", "required": ["a\x00"]})
        == ("CASE jsonb_typeof(doc) WHEN 'object' THEN FALSE ELSE FALSE END")
        or compile_predicate({"type": "object", "required": ["a\x00"]}) == "FALSE"
    )
    sql = compile_predicate({"properties": {"a\x00": {"type": "string"}, "\ud800": False}})
    assert sql == "TRUE"
    assert "\x00" not in (compile_predicate({"enum": ["a\x00", "b"]}) or "")


@settings(max_examples=60, deadline=None)
@given(schemas)
def test_compile_never_raises(schema: Any) -> None:
    sql = compile_predicate(schema)
    assert sql is None or (("\x00" not in sql and sql.count("(") == sql.count(")")) or "'" in sql)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_compile_garbage_never_raises(value: Any) -> None:
    compile_predicate(value)
    compile_predicate({"properties": {"a": value}, "items": value, "not": value})
