"""Validation with reasons: the lake's final word on whether a document is valid.

``jsonschema``'s Draft7Validator, extended so that its verdict is the lake's semantics:

* numbers are exact (documents are parsed with Decimal; ``integer`` means a zero fractional
  part; ``multipleOf`` is exact rational arithmetic);
* ``enum``/``const``/``uniqueItems`` use JSON equality (``true`` is not ``1``; 1 == 1.0);
* ``pattern``/``patternProperties``/``additionalProperties`` use the lake's regex semantics
  (:func:`lake_validate.formats.lake_regex`);
* ``format`` asserts exactly the formats of :data:`lake_validate.formats.FORMAT_CHECKERS`.

``fastjsonschema`` (compiled once per schema) answers "valid?" first in
:meth:`SchemaValidator.explain_many`, but only for schemas and documents where it provably
agrees (see :func:`_fast_safe` and :func:`_fast_parse`); everything else goes to jsonschema.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import jsonschema
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from lake_validate.compile import compile_predicate
from lake_validate.formats import FORMAT_CHECKERS, always_valid, lake_regex, translate
from lake_validate.values import (
    hashable_key,
    is_integral,
    is_number,
    json_equal,
    loads,
    normalize,
    render,
)

# Optional: without it everything goes through jsonschema. Imported by name, so that mypy sees
# one type (Any) whichever release is installed (Debian 12's 2.16 gave a redefinition error).
fastjsonschema: Any
try:
    fastjsonschema = importlib.import_module("fastjsonschema")
except ImportError:  # pragma: no cover
    fastjsonschema = None

__all__ = [
    "SchemaValidator",
    "check_schema",
    "explain",
    "explain_many",
    "validator_for",
]

MAX_ERRORS = 20  # reasons reported per document
_SCAN_ERRORS = 500  # errors looked at (then sorted) before keeping MAX_ERRORS
_VALUE_LIMIT = 200  # characters of a value shown in a message
DRAFT7_URIS = {
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
    "https://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft-07/schema",
}


# --------------------------------------------------------------------------- jsonschema side


def _type_number(checker: Any, instance: Any) -> bool:
    return is_number(instance)


def _type_integer(checker: Any, instance: Any) -> bool:
    return is_number(instance) and is_integral(instance)


class _Msg(ValidationError):
    """A ValidationError whose message we wrote ourselves (already truncated)."""


def _kw_enum(validator: Any, enums: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not isinstance(enums, list) or not any(json_equal(instance, e) for e in enums):
        yield ValidationError("enum")


def _kw_const(validator: Any, const: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not json_equal(instance, const):
        yield ValidationError("const")


def _kw_unique(
    validator: Any, unique: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if unique is True and isinstance(instance, list):
        seen: set[Any] = set()
        for item in instance:
            k = hashable_key(item)
            if k in seen:
                yield ValidationError("uniqueItems")
                return
            seen.add(k)


def _kw_multiple_of(
    validator: Any, m: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not is_number(instance) or not is_number(m):
        return
    try:
        ok = Fraction(instance) % Fraction(m) == 0
    except (ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        ok = False
    if not ok:
        yield ValidationError("multipleOf")


def _kw_pattern(validator: Any, p: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str):
        try:
            matched = lake_regex(p).search(instance) is not None
        except (re.error, TypeError):
            matched = False
        if not matched:
            yield ValidationError("pattern")


def _kw_format(validator: Any, fmt: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    check = FORMAT_CHECKERS.get(fmt) if isinstance(fmt, str) else None
    if check is not None and isinstance(instance, str) and not check(instance):
        yield ValidationError("format")


def _search(p: str, key: str) -> bool:
    try:
        return lake_regex(p).search(key) is not None
    except (re.error, TypeError):
        return False


def _kw_pattern_properties(
    validator: Any, pats: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict) or not isinstance(pats, dict):
        return
    for p, sub in pats.items():
        for k, v in instance.items():
            if _search(p, k):
                yield from validator.descend(v, sub, path=k, schema_path=p)


def _kw_additional_properties(
    validator: Any, ap: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    props = schema.get("properties", {})
    pats = schema.get("patternProperties", {})
    extras = [
        k
        for k in instance
        if k not in props
        and not any(_search(p, k) for p in (pats if isinstance(pats, dict) else ()))
    ]
    if isinstance(ap, dict):
        for k in extras:
            yield from validator.descend(instance[k], ap, path=k)
    elif ap is False:
        for k in extras:
            yield _Msg(f"property {render(k, 100)} is not allowed", path=[k], instance=instance[k])


def _kw_required(validator: Any, req: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not isinstance(instance, dict) or not isinstance(req, list):
        return
    for k in req:
        if k not in instance:
            yield _Msg(f"required property {render(k, 100)} is missing")


def _kw_dependencies(
    validator: Any, deps: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict) or not isinstance(deps, dict):
        return
    for k, dep in deps.items():
        if k not in instance:
            continue
        if isinstance(dep, list):
            for d in dep:
                if d not in instance:
                    yield _Msg(
                        f"property {render(d, 100)} is required when {render(k, 100)} is present"
                    )
        else:
            yield from validator.descend(instance, dep, schema_path=k)


def _kw_additional_items(
    validator: Any, add: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    items = schema.get("items", {})
    if not isinstance(instance, list) or not isinstance(items, list):
        return
    n = len(items)
    if isinstance(add, dict):
        for i, item in enumerate(instance[n:], start=n):
            yield from validator.descend(item, add, path=i)
    elif add is False and len(instance) > n:
        yield _Msg(f"array has {len(instance)} items, at most {n} are allowed")


_LakeValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft7Validator,
    validators={
        "enum": _kw_enum,
        "const": _kw_const,
        "uniqueItems": _kw_unique,
        "multipleOf": _kw_multiple_of,
        "pattern": _kw_pattern,
        "format": _kw_format,
        "patternProperties": _kw_pattern_properties,
        "additionalProperties": _kw_additional_properties,
        "required": _kw_required,
        "dependencies": _kw_dependencies,
        "additionalItems": _kw_additional_items,
    },
    type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(
        {"number": _type_number, "integer": _type_integer}
    ),
)


# --------------------------------------------------------------------------- messages


def _num_text(v: Any) -> str:
    return render(v, 60)


def _message(err: ValidationError) -> str:
    if isinstance(err, _Msg):
        return err.message
    kw = err.validator
    val = err.validator_value
    inst = err.instance
    r = render(inst, _VALUE_LIMIT)
    n = len(inst) if isinstance(inst, (str, list, dict)) else None
    if kw == "type":
        names = val if isinstance(val, list) else [val]
        return f"{r} is not of type {' or '.join(str(x) for x in names)}"
    if kw == "enum":
        return f"{r} is not one of {render(val, _VALUE_LIMIT)}"
    if kw == "const":
        return f"{r} is not the constant {render(val, _VALUE_LIMIT)}"
    if kw == "minimum":
        return f"{r} is less than the minimum of {_num_text(val)}"
    if kw == "maximum":
        return f"{r} is greater than the maximum of {_num_text(val)}"
    if kw == "exclusiveMinimum":
        return f"{r} is less than or equal to the exclusive minimum of {_num_text(val)}"
    if kw == "exclusiveMaximum":
        return f"{r} is greater than or equal to the exclusive maximum of {_num_text(val)}"
    if kw == "multipleOf":
        return f"{r} is not a multiple of {_num_text(val)}"
    if kw == "minLength":
        return f"{r} is shorter than {val} characters ({n})"
    if kw == "maxLength":
        return f"{r} is longer than {val} characters ({n})"
    if kw == "pattern":
        return f"{r} does not match the pattern {render(val, 100)}"
    if kw == "format":
        return f"{r} is not a valid {render(val, 60)}"
    if kw == "minItems":
        return f"array has {n} items, fewer than the minimum of {val}"
    if kw == "maxItems":
        return f"array has {n} items, more than the maximum of {val}"
    if kw == "uniqueItems":
        return "array items are not unique"
    if kw == "minProperties":
        return f"object has {n} properties, fewer than the minimum of {val}"
    if kw == "maxProperties":
        return f"object has {n} properties, more than the maximum of {val}"
    if kw == "anyOf":
        return f"{r} is not valid under any of the given schemas"
    if kw == "oneOf":
        if err.context:
            return f"{r} is not valid under any of the given schemas"
        return f"{r} is valid under more than one of the given schemas"
    if kw == "not":
        return f"{r} must not be valid under the given schema"
    if kw == "contains":
        return "array does not contain any item valid under the given schema"
    if kw in (None, "false") or err.schema is False:
        return f"{r} is not allowed here (false schema)"
    return f"{r} is not valid under {render(kw, 60)}"


def _path_text(path: Iterable[Any]) -> str:
    out = ["$"]
    for p in path:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif isinstance(p, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", p):
            out.append("." + p)
        else:
            out.append("[" + render(str(p), 100) + "]")
    return "".join(out)


def _path_key(path: Iterable[Any]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)


def _reason(path: str, rule: str, message: str) -> dict[str, str]:
    return {"path": path, "rule": rule, "message": message}


# --------------------------------------------------------------------------- fast path


_FAST_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "minItems",
    "maxItems",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "$ref",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "$comment",
}
_TYPE_NAMES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_SAFE_TEXT = re.compile(r"[^\\\"'{}\x00-\x1f\x7f]*")


def _safe_text(s: Any) -> bool:
    return isinstance(s, str) and _SAFE_TEXT.fullmatch(s) is not None and s.isprintable()


def _safe_number(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    return math.isfinite(x) and abs(x) < 2**53


def _fast_value_ok(v: Any) -> bool:
    """enum/const members that Python == compares like JSON equality (no bool/0/1 mixups)."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, bool):
            return False
        if isinstance(x, (int, float)):
            if not _safe_number(x) or x in (0, 1):
                return False
        elif isinstance(x, str):
            if not _safe_text(x):
                return False
        elif x is None:
            pass
        elif isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict):
            if not all(_safe_text(k) for k in x):
                return False
            stack.extend(x.values())
        else:
            return False
    return True


def _fast_safe(schema: Any) -> bool:
    """Is fastjsonschema (2.16 .. 2.2x) provably in agreement with _LakeValidator here?"""
    if not isinstance(schema, dict):
        return False
    sv = schema.get("$schema")
    if sv is not None and sv not in DRAFT7_URIS:
        return False
    rid = schema.get("$id")
    if rid is not None and not _safe_text(rid):
        return False
    root = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
    stack: list[Any] = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > 5000:
            return False
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            return False
        if ("minLength" in node or "maxLength" in node) and (
            "minItems" in node or "maxItems" in node
        ):
            return False  # fastjsonschema 2.16 shares one length variable: UnboundLocalError
        for k, v in node.items():
            if k not in _FAST_KEYS:
                return False
            if k == "type":
                names = [v] if isinstance(v, str) else v
                if not isinstance(names, list) or not all(n in _TYPE_NAMES for n in names):
                    return False
            elif k in ("properties", "definitions"):
                if not isinstance(v, dict) or not all(_safe_text(p) for p in v):
                    return False
                stack.extend(v.values())
            elif k == "required":
                if not isinstance(v, list) or not all(_safe_text(p) for p in v):
                    return False
            elif k in ("additionalProperties", "items"):
                if not isinstance(v, (dict, bool)):
                    return False
                stack.append(v)
            elif k == "enum":
                if not isinstance(v, list) or not all(_fast_value_ok(m) for m in v):
                    return False
            elif k == "const":
                if not _fast_value_ok(v):
                    return False
            elif k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if not _safe_number(v):
                    return False
            elif k in ("minLength", "maxLength", "minItems", "maxItems"):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    return False
            elif k == "pattern":
                if not _safe_text(v) or not v.isascii() or translate(v) is None:
                    return False
            elif k == "format":
                if not _safe_text(v):
                    return False
            elif k in ("allOf", "anyOf", "oneOf"):
                if not isinstance(v, list) or not v:
                    return False
                stack.extend(v)
            elif k == "not":
                if not (isinstance(v, bool) or (isinstance(v, dict) and v)):
                    return False
                stack.append(v)
            elif k == "$ref" and (
                not _safe_text(v) or not v.startswith("#") or _resolve(schema, v) is None
            ):
                return False
    return True


def _format_names(schema: Any) -> set[str]:
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            f = node.get("format")
            if isinstance(f, str):
                names.add(f)
            for k, v in node.items():
                if k not in ("enum", "const", "default", "examples"):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _make_fast(schema: Any) -> Callable[[Any], Any] | None:
    if fastjsonschema is None or not _fast_safe(schema):
        return None
    formats = {n: FORMAT_CHECKERS.get(n, always_valid) for n in _format_names(schema)}
    try:
        fn: Callable[[Any], Any] = fastjsonschema.compile(
            schema, formats=formats, use_default=False
        )
        return fn
    except Exception:
        return None


class _ParseFlags:
    unsafe = False


def _fast_float(text: str) -> float:
    """parse_float for the fast path: flags numbers whose float is not exactly comparable."""
    body = text.lstrip("-")
    if "e" in body or "E" in body:
        _ParseFlags.unsafe = True
        return 0.0
    intpart, _, frac = body.partition(".")
    digits = (intpart + frac).strip("0")
    if len(digits) > 15 or len(intpart) > 300:
        _ParseFlags.unsafe = True
        return 0.0
    if intpart.strip("0") == "" and len(frac) - len(frac.lstrip("0")) > 290:
        _ParseFlags.unsafe = True
        return 0.0
    return float(text)


def _fast_int(text: str) -> int:
    if len(text) > 4000:
        _ParseFlags.unsafe = True
        return 0
    return int(text)


def _fast_parse(text: str | bytes) -> Any:
    """Parse for fastjsonschema; raises ValueError when the document needs the slow path."""
    _ParseFlags.unsafe = False
    doc = json.loads(text, parse_float=_fast_float, parse_int=_fast_int)
    if _ParseFlags.unsafe:
        raise ValueError("number needs exact handling")
    return doc


# --------------------------------------------------------------------------- validator


def _resolve(root: Any, ref: str) -> Any:
    from lake_validate.compile import _has_nested_id, _resolve_local

    if _has_nested_id(root):
        return None
    return _resolve_local(root, ref)


def _ref_problem(schema: Any) -> str | None:
    """The lake supports only local '#...' references (no network, no nested $id)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None and (not isinstance(ref, str) or _resolve(schema, ref) is None):
                return f"unsupported or unresolvable $ref {render(ref, 100)}"
            for k, v in node.items():
                if k not in ("enum", "const", "default", "examples"):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return None


class SchemaValidator:
    """Everything compiled once for one schema: jsonschema validator, fastjsonschema
    function (if safe), SQL predicate (lazily)."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.norm = normalize(schema)
        self.problem: str | None = None
        if not isinstance(self.norm, (dict, bool)):
            self.problem = "schema must be a JSON object or a boolean"
        elif isinstance(self.norm, dict):
            self.problem = _ref_problem(self.norm)
        self._js = _LakeValidator(self.norm if self.problem is None else {})
        self.fast = _make_fast(schema) if self.problem is None else None
        self._predicates: dict[str, str | None] = {}

    def predicate(self, doc_expr: str = "doc") -> str | None:
        if doc_expr not in self._predicates:
            self._predicates[doc_expr] = (
                None if self.problem else compile_predicate(self.schema, doc_expr)
            )
        return self._predicates[doc_expr]

    def _errors(self, doc: Any) -> list[dict[str, str]]:
        if self.problem is not None:
            return [_reason("$", "schema", self.problem)]
        try:
            errs = list(itertools.islice(self._js.iter_errors(doc), _SCAN_ERRORS))
        except RecursionError:
            return [_reason("$", "depth", "document nested too deeply to validate")]
        except Exception as exc:  # a broken schema must not break the batch
            return [_reason("$", "schema", f"cannot validate: {render(str(exc), 150)}")]
        keyed = []
        for e in errs:
            path = list(e.absolute_path)
            rule = str(e.validator) if e.validator is not None else "false"
            keyed.append((_path_key(path), rule, _message(e), path))
        keyed.sort(key=lambda t: (t[0], t[1], t[2]))
        return [_reason(_path_text(p), rule, msg) for _, rule, msg, p in keyed[:MAX_ERRORS]]

    def explain(self, doc: Any) -> list[dict[str, str]]:
        """Reasons why ``doc`` (a parsed value; floats are taken as their shortest decimal)
        is invalid; [] if valid."""
        try:
            norm = normalize(doc)
        except RecursionError:  # pragma: no cover - normalize is iterative
            return [_reason("$", "depth", "document nested too deeply to validate")]
        return self._errors(norm)

    def explain_text(self, text: str | bytes) -> list[dict[str, str]]:
        if not isinstance(text, (str, bytes, bytearray)):
            return [_reason("$", "json", "document is not JSON text (NULL?)")]
        try:
            doc = loads(text)
        except RecursionError:
            return [_reason("$", "depth", "document nested too deeply to parse")]
        except ValueError as exc:
            return [_reason("$", "json", f"not valid JSON: {render(str(exc), 150)}")]
        return self._errors(doc)

    def is_valid_text(self, text: str | bytes) -> bool:
        if self.fast is not None:
            try:
                self.fast(_fast_parse(text))
                return True
            except Exception:
                pass
        return not self.explain_text(text)

    def explain_many(self, docs: Iterable[str | bytes]) -> list[list[dict[str, str]]]:
        out: list[list[dict[str, str]]] = []
        fast = self.fast
        for text in docs:
            if fast is not None:
                try:
                    fast(_fast_parse(text))
                    out.append([])
                    continue
                except Exception:
                    pass
            out.append(self.explain_text(text))
        return out


# --------------------------------------------------------------------------- cache & API

_CACHE: OrderedDict[Any, tuple[str, SchemaValidator]] = OrderedDict()
_CACHE_SIZE = 128


def _fingerprint(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=str, allow_nan=True)


def validator_for(key: Any, schema: Any) -> SchemaValidator:
    """The compiled validator for ``schema``, cached under ``key`` (e.g. (dataset, version)).

    If the cached entry for ``key`` was built from a different schema it is rebuilt."""
    fp = _fingerprint(schema)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == fp:
        _CACHE.move_to_end(key)
        return hit[1]
    sv = SchemaValidator(schema)
    _CACHE[key] = (fp, sv)
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return sv


def _by_schema(schema: Any) -> SchemaValidator:
    return validator_for(("schema", _fingerprint(schema)), schema)


def explain(schema: Any, doc: Any) -> list[dict[str, str]]:
    """Reasons why ``doc`` is invalid under ``schema`` ([] if valid): a list of
    ``{"path", "rule", "message"}``, at most 20, sorted by path, rule, message."""
    return _by_schema(schema).explain(doc)


def explain_many(schema: Any, docs: list[str]) -> list[list[dict[str, str]]]:
    """explain() for documents given as JSON text (jsonb output); [] for valid ones."""
    return _by_schema(schema).explain_many(docs)


# --------------------------------------------------------------------------- schema checks

_SCHEMA_DEPTH = 64


def check_schema(schema: Any) -> list[str]:
    """Problems that make ``schema`` unacceptable as a lake dataset schema ([] if fine)."""
    if not isinstance(schema, dict):
        return ["schema must be a JSON object"]
    problems: list[str] = []
    sv = schema.get("$schema")
    if sv is not None and sv not in DRAFT7_URIS:
        problems.append(f"unsupported $schema {render(sv, 100)}: only draft-07 is supported")
    too_deep, bad_numbers, bad_patterns = _walk_schema(schema)
    if too_deep:
        return [*problems, f"schema nested deeper than {_SCHEMA_DEPTH} levels"]
    try:
        meta = Draft7Validator(Draft7Validator.META_SCHEMA)
        errs = sorted(
            itertools.islice(meta.iter_errors(schema), 50),
            key=lambda e: (_path_key(e.absolute_path), str(e.validator)),
        )
        for e in errs[:20]:
            where = _path_text(e.absolute_path)
            problems.append(f"{where}: {render(e.message, 200)} (metaschema {e.validator})")
    except RecursionError:
        problems.append("schema nested too deeply")
    t = schema.get("type")
    if t != "object" and t != ["object"]:
        problems.append('top-level "type" must be "object" (records are JSON objects)')
    problems.extend(bad_numbers)
    problems.extend(bad_patterns)
    ref = _ref_problem(normalize(schema))
    if ref is not None:
        problems.append(ref + " (only local '#/...' references are supported)")
    return problems


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SCHEMA_ONE = (
    "additionalProperties",
    "additionalItems",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
)


def _walk_schema(schema: Any) -> tuple[bool, list[str], list[str]]:
    bad_numbers: list[str] = []
    bad_patterns: list[str] = []
    stack: list[tuple[Any, int, str]] = [(schema, 0, "$")]
    while stack:
        node, depth, where = stack.pop()
        if depth > _SCHEMA_DEPTH:
            return True, bad_numbers, bad_patterns
        if isinstance(node, float) and not math.isfinite(node):
            bad_numbers.append(f"{where}: {node} is not a JSON number")
            continue
        if isinstance(node, Decimal) and not node.is_finite():
            bad_numbers.append(f"{where}: {node} is not a JSON number")
            continue
        if isinstance(node, list):
            stack.extend((v, depth + 1, where) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        p = node.get("pattern")
        if isinstance(p, str):
            try:
                lake_regex(p)
            except re.error as exc:
                bad_patterns.append(f"{where}: invalid pattern {render(p, 100)}: {exc}")
        pp = node.get("patternProperties")
        if isinstance(pp, dict):
            for k in pp:
                try:
                    lake_regex(k)
                except re.error as exc:
                    bad_patterns.append(
                        f"{where}: invalid patternProperties key {render(k, 100)}: {exc}"
                    )
        for k, v in node.items():
            stack.append((v, depth + 1, f"{where}.{k}" if len(where) < 200 else where))
    return False, bad_numbers, bad_patterns
