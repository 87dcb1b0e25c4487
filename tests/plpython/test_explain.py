"""Unit tests for lake_validate.explain (pure Python, no database)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
PLPYTHON = Path(__file__).resolve().parents[2] / "plpython"
sys.path.insert(0, str(PLPYTHON))

import lake_validate  # noqa: E402
from lake_validate import (  # noqa: E402
    check_schema,
    explain,
    explain_many,
    validator_for,
)
from lake_validate.explain import _fast_safe  # noqa: E402
from lake_validate.values import json_text  # noqa: E402
from test_compile import LOCATION, docs_for, schemas  # noqa: E402

pytestmark = pytest.mark.fast  # needs no server (tests/conftest.py)

EXAMPLES = int(os.environ.get("LAKE_HYPOTHESIS_EXAMPLES", "60"))
OK = {"ts": "2025-01-31T12:00:00Z", "lat": 1.5, "lon": 2}


def reasons(schema: Any, doc: Any) -> list[tuple[str, str]]:
    return [(r["path"], r["rule"]) for r in explain(schema, doc)]


# --------------------------------------------------------------------------- messages


def test_valid_document() -> None:
    assert explain(LOCATION, OK) == []
    assert explain_many(LOCATION, [json.dumps(OK)]) == [[]]


def test_reasons_and_messages() -> None:
    doc = {"ts": 5, "lat": 123.0, "lon": "x", "source": "bt", "activity": "a" * 40, "extra": 1}
    got = explain(LOCATION, doc)
    assert got == [
        {
            "path": "$.activity",
            "rule": "maxLength",
            "message": '"' + "a" * 40 + '" is longer than 32 characters (40)',
        },
        {"path": "$.lat", "rule": "maximum", "message": "123.0 is greater than the maximum of 90"},
        {"path": "$.lon", "rule": "type", "message": '"x" is not of type number'},
        {
            "path": "$.source",
            "rule": "enum",
            "message": '"bt" is not one of ["gps", "wifi", "cell"]',
        },
        {"path": "$.ts", "rule": "type", "message": "5 is not of type string"},
    ]
    assert explain(LOCATION, {"lat": 0}) == [
        {"path": "$", "rule": "required", "message": 'required property "lon" is missing'},
        {"path": "$", "rule": "required", "message": 'required property "ts" is missing'},
    ]


def test_paths_for_hostile_keys_and_arrays() -> None:
    schema = {
        "type": "object",
        "properties": {'it\'s "x"': {"type": "array", "items": {"type": "integer"}}},
        "additionalProperties": False,
    }
    got = explain(schema, {'it\'s "x"': [1, 2.5], "a b": 1})
    assert got == [
        {
            "path": '$["a b"]',
            "rule": "additionalProperties",
            "message": 'property "a b" is not allowed',
        },
        {"path": '$["it\'s \\"x\\""][1]', "rule": "type", "message": "2.5 is not of type integer"},
    ]


def test_long_values_are_truncated() -> None:
    big = "é" * 10_000_000
    schema = {"type": "object", "properties": {"s": {"maxLength": 3}, "o": {"type": "string"}}}
    got = explain(schema, {"s": big, "o": {"k": ["x" * 1000] * 1000}})
    for r in got:
        assert len(r["message"]) < 300, r
    assert got[1]["message"].endswith("is longer than 3 characters (10000000)")


def test_at_most_20_reasons_in_a_stable_order() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    doc = {f"k{i:03d}": i for i in range(100)}
    got = explain(schema, doc)
    assert len(got) == 20
    assert [r["path"] for r in got] == [f"$.k{i:03d}" for i in range(20)]
    items = list(doc.items())
    random.Random(1).shuffle(items)
    assert explain(schema, dict(items)) == got


def test_exact_numbers() -> None:
    s = {"type": "object", "properties": {"m": {"multipleOf": 0.01}, "i": {"type": "integer"}}}
    assert explain(s, {"m": Decimal("0.07"), "i": Decimal("1.0")}) == []
    assert explain_many(s, ['{"m": 0.07, "i": 1.0}', '{"m": 0.071}', '{"i": 1.5}']) == [
        [],
        [{"path": "$.m", "rule": "multipleOf", "message": "0.071 is not a multiple of 0.01"}],
        [{"path": "$.i", "rule": "type", "message": "1.5 is not of type integer"}],
    ]
    lat = '{"ts": "2025-01-31T12:00:00Z", "lon": 0, "lat": 90.00000000000000000001}'
    assert reasons_many(LOCATION, [lat]) == [[("$.lat", "maximum")]]
    big = '{"ts": "2025-01-31T12:00:00Z", "lon": 0, "lat": 1' + "0" * 308 + "}"
    assert reasons_many(LOCATION, [big]) == [[("$.lat", "maximum")]]
    huge = '{"ts": "2025-01-31T12:00:00Z", "lon": 0, "lat": -1' + "0" * 6000 + ".5}"
    assert reasons_many(LOCATION, [huge]) == [[("$.lat", "minimum")]]


def reasons_many(schema: Any, texts: list[str]) -> list[list[tuple[str, str]]]:
    return [[(r["path"], r["rule"]) for r in rs] for rs in explain_many(schema, texts)]


def test_json_equality_in_enum_const_unique() -> None:
    assert reasons({"enum": [1]}, True) == [("$", "enum")]
    assert reasons({"enum": [1]}, Decimal("1.0")) == []
    assert reasons({"enum": [[1]]}, [True]) == [("$", "enum")]
    assert reasons({"const": {"a": 0}}, {"a": False}) == [("$", "const")]
    assert reasons({"uniqueItems": True}, [1, True]) == []
    assert reasons({"uniqueItems": True}, [1, Decimal("1.0")]) == [("$", "uniqueItems")]
    assert reasons({"uniqueItems": True}, [{"a": 1}, {"a": 1.0}]) == [("$", "uniqueItems")]


def test_formats() -> None:
    s = {"type": "object", "properties": {"d": {"format": "date-time"}, "u": {"format": "uri"}}}
    assert explain(s, {"d": "2025-01-31T12:00:00Z", "u": "not a uri"}) == []
    assert reasons(s, {"d": "2025-01-31 12:00:00Z"}) == [("$.d", "format")]
    assert explain(s, {"d": 5}) == []


def test_invalid_json_and_deep_documents() -> None:
    assert explain_many(LOCATION, [None])[0][0]["rule"] == "json"  # type: ignore[list-item]
    got = explain_many(LOCATION, ["{", "[" * 100_000 + "]" * 100_000])
    assert got[0][0]["rule"] == "json"
    assert got[1][0]["rule"] in ("depth", "type")
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert explain({"items": {"items": {"type": "string"}}}, deep)[0]["rule"] in ("depth", "type")


def test_false_schema_and_bad_refs() -> None:
    assert reasons(False, {}) == [("$", "false")]
    assert explain(True, {"a": 1}) == []
    got = explain({"$ref": "http://example.com/schema.json"}, {})
    assert got[0]["rule"] == "schema"


def test_oneof_anyof_not_messages() -> None:
    s = {"oneOf": [{"type": "integer"}, {"minimum": 0}]}
    assert explain(s, 5)[0]["message"] == "5 is valid under more than one of the given schemas"
    assert explain(s, Decimal("-0.5"))[0]["message"] == (
        "-0.5 is not valid under any of the given schemas"
    )
    assert explain({"not": {"type": "null"}}, None)[0]["rule"] == "not"


# --------------------------------------------------------------------------- cache & fast path


def test_validator_cache() -> None:
    a = validator_for(("loc", 1), LOCATION)
    assert validator_for(("loc", 1), LOCATION) is a
    changed = {**LOCATION, "required": ["ts"]}
    b = validator_for(("loc", 1), changed)
    assert b is not a and b.schema == changed
    assert a.fast is not None  # the location schema uses the fastjsonschema path
    assert a.predicate() is not None and a.predicate("x.doc") != a.predicate()


def test_fast_path_is_skipped_when_unsafe() -> None:
    assert _fast_safe(LOCATION)
    assert not _fast_safe({"properties": {'a"b': {}}})
    assert not _fast_safe({"enum": [1, 2]})  # Python: True == 1
    assert not _fast_safe({"multipleOf": 0.1})
    assert not _fast_safe({"maximum": 2**60})
    assert not _fast_safe({"patternProperties": {"a$": {}}})
    v = validator_for("fast-enum", {"enum": [Decimal(1), 2]})
    assert v.fast is None
    assert v.explain_many(["true", "1.0"]) == [
        [{"path": "$", "rule": "enum", "message": "true is not one of [1, 2]"}],
        [],
    ]


def fast_verdict(v: Any, text: str) -> bool | None:
    from lake_validate.explain import _fast_parse

    try:
        doc = _fast_parse(text)
    except Exception:
        return None
    try:
        v.fast(doc)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False
    except Exception:
        return None  # a crash of the generated code: explain_many falls back to jsonschema


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_path_agrees_with_jsonschema(data: Any) -> None:
    schema = data.draw(schemas, label="schema")
    v = validator_for(("prop", repr(schema)), schema)
    docs = data.draw(st.lists(docs_for(schema), max_size=10), label="docs")
    for doc in docs:
        try:
            text = json_text(doc)
        except ValueError:
            continue
        slow = v.explain_text(text) == []
        if v.fast is not None:
            fast = fast_verdict(v, text)
            if fast is not None:
                assert fast == slow, (schema, text)
        assert (v.explain_many([text]) == [[]]) == slow


# --------------------------------------------------------------------------- check_schema


def test_check_schema() -> None:
    assert check_schema(LOCATION) == []
    assert check_schema([]) == ["schema must be a JSON object"]
    assert check_schema({"type": "array"}) == [
        'top-level "type" must be "object" (records are JSON objects)'
    ]
    probs = check_schema({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"})
    assert any("draft-07" in p for p in probs)
    probs = check_schema({"type": "object", "properties": {"a": {"type": 5}}})
    assert any(p.startswith("$.properties.a.type:") for p in probs)
    probs = check_schema({"type": "object", "properties": {"a": {"pattern": "(("}}})
    assert any("invalid pattern" in p for p in probs)
    probs = check_schema({"type": "object", "properties": {"a": {"$ref": "http://x/y.json"}}})
    assert any("$ref" in p for p in probs)
    probs = check_schema({"type": "object", "properties": {"a": {"maximum": float("nan")}}})
    assert any("not a JSON number" in p for p in probs)
    deep: Any = {"type": "object"}
    for _ in range(200):
        deep = {"type": "object", "properties": {"a": deep}}
    assert any("nested deeper" in p for p in check_schema(deep))


# --------------------------------------------------------------------------- loading


def test_loads_from_source_text_without_filesystem() -> None:
    """The package imports through a meta-path finder serving source text (as PL/Python
    does), with absolute imports only and no use of __file__."""
    sources = {
        "lake_validate": (PLPYTHON / "lake_validate" / "__init__.py").read_text(),
        **{
            f"lake_validate.{m}": (PLPYTHON / "lake_validate" / f"{m}.py").read_text()
            for m in lake_validate.SUBMODULES
        },
    }
    for name, src in sources.items():
        assert "__file__" not in src, name
        assert "from ." not in src and "import ." not in src, name
    script = f"""
import importlib.abc, importlib.util, sys
SOURCES = {sources!r}
class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name in SOURCES:
            return importlib.util.spec_from_loader(name, self, is_package=(name == "lake_validate"))
        return None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        if module.__name__ == "lake_validate":
            module.__path__ = []
        code = compile(SOURCES[module.__name__], "<" + module.__name__ + ">", "exec")
        exec(code, module.__dict__)
sys.meta_path.insert(0, Finder())
import lake_validate
assert lake_validate.compile_predicate({{"type": "object"}}) is not None
assert lake_validate.explain_many({{"type": "object"}}, ["[]", "{{}}"])[1] == []
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ok", out.stderr
