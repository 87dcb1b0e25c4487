"""Compile a draft-07 JSON Schema into one SQL boolean expression over a jsonb value.

The expression is three-valued and SOUND:

* TRUE  -> the document is valid (as :mod:`lake_validate.explain` judges it);
* FALSE -> the document is invalid;
* NULL  -> unknown (the schema uses something only Python can decide for this document).

The trigger evaluates ``NOT coalesce(<expr>, false)`` and re-checks those rows in Python, so
NULL only costs a re-check.  SQL's AND/OR/NOT are Kleene logic, which is exactly the logic
of "TRUE = surely valid, FALSE = surely invalid, NULL = do not know", so the combinators
(``not``, ``anyOf``, ``oneOf``, ``if``) stay sound with partial knowledge.

How a schema node is compiled: every keyword constrains one JSON type (``maximum`` only
numbers, ``required`` only objects, ...), so a node becomes one check per JSON type
(``object``, ``array``, ``string``, ``number``, ``boolean``, ``null``), combined per type
by allOf/anyOf/oneOf/not, and emitted as a single
``CASE jsonb_typeof(v) WHEN 'number' THEN ... END``: the value is looked up once for the
type test and once more only where a branch needs the value itself.  Inside a branch the
type is known, so casts such as ``(v)::numeric`` cannot fail (CASE is the one construct
whose evaluation order PostgreSQL guarantees).

The expression never raises an error for any jsonb input, and is cheap: an absent optional
property costs a ``?`` test only on the rows where the property is not of an allowed type.

Numbers are compared exactly (``numeric``), matching the explainer, which parses documents
with Decimal.  Strings: ``length()`` counts characters, which are code points in a UTF8
database (the lake's databases are UTF8).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from lake_validate.formats import FORMATS_EXCLUDING_NON_STRINGS, format_sql_regex, translate
from lake_validate.values import (
    is_integral,
    is_number,
    json_text,
    jsonb_representable,
    normalize,
    numeric_literal,
)

__all__ = ["compile_predicate", "jsonb_literal", "quote_ident", "quote_literal"]

TYPES = ("object", "array", "string", "number", "boolean", "null")
_ANNOTATIONS = {
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "definitions",
    "contentEncoding",
    "contentMediaType",
}
_MAX_SQL = 1_000_000  # give up (None) above this many characters of SQL
_MAX_DEPTH = 48  # schema nesting depth we compile
_REF_UNROLL = 2  # how many times one $ref may be entered on the current path
_MAX_NODES = 20_000  # schema nodes compiled (bounds $ref fan-out)


# --------------------------------------------------------------------------- quoting


def quote_literal(s: str) -> str:
    """SQL string literal (standard_conforming_strings): quotes doubled, nothing else.

    Raises ValueError for text PostgreSQL cannot hold (NUL, unpaired surrogates)."""
    if not isinstance(s, str):
        raise TypeError("quote_literal expects str")
    if "\x00" in s:
        raise ValueError("NUL cannot appear in PostgreSQL text")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid Unicode (unpaired surrogate)") from exc
    return "'" + s.replace("'", "''") + "'"


def quote_ident(s: str) -> str:
    """SQL identifier in double quotes (quotes doubled)."""
    quote_literal(s)  # same validity rules
    return '"' + s.replace('"', '""') + '"'


def jsonb_literal(value: Any) -> str:
    """``'<json>'::jsonb`` for a JSON value (Decimals in plain notation)."""
    return quote_literal(json_text(normalize(value))) + "::jsonb"


def _text_array(items: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join(quote_literal(s) for s in items) + "]::text[]"


# --------------------------------------------------------------------------- three-valued IR


class _Unsupported(Exception):
    """Raised when the schema cannot be compiled soundly at all (-> None)."""


@dataclass(frozen=True)
class X:
    """A three-valued SQL boolean expression.

    ``const`` is True/False when the expression is that constant; ``exact`` means it is
    never NULL when evaluated on a present value (so the TRUE/FALSE answer is definitive).
    """

    sql: str
    exact: bool = True
    const: bool | None = None
    # shape of a simple check, for cheaper idioms in _materialize:
    # ("range", lo, lo_incl, hi, hi_incl), ("strenum", (strings...)) or ("strformat", name)
    meta: tuple[Any, ...] | None = None


TRUE = X("TRUE", True, True)
FALSE = X("FALSE", True, False)
UNKNOWN = X("NULL::boolean", False, None)


def and_(*xs: X) -> X:
    items: list[X] = []
    for x in xs:
        if x.const is False:
            return FALSE
        if x.const is True:
            continue
        if x not in items:
            items.append(x)
    if not items:
        return TRUE
    if len(items) == 1:
        return items[0]
    return X("(" + " AND ".join(x.sql for x in items) + ")", all(x.exact for x in items))


def or_(*xs: X) -> X:
    items: list[X] = []
    for x in xs:
        if x.const is True:
            return TRUE
        if x.const is False:
            continue
        if x not in items:
            items.append(x)
    if not items:
        return FALSE
    if len(items) == 1:
        return items[0]
    return X("(" + " OR ".join(x.sql for x in items) + ")", all(x.exact for x in items))


def not_(x: X) -> X:
    if x.const is not None:
        return FALSE if x.const else TRUE
    if x is UNKNOWN:
        return UNKNOWN
    return X("(NOT " + x.sql + ")", x.exact)


def raw(sql: str, exact: bool = True) -> X:
    return X(sql, exact)


def only_if_true(x: X) -> X:
    """TRUE where x is TRUE, else NULL (for one-sided approximations)."""
    if x.const is not None:
        return TRUE if x.const else UNKNOWN
    return X("CASE WHEN " + x.sql + " THEN TRUE END", False)


def one_of(xs: Sequence[X]) -> X:
    if not xs:
        return FALSE
    trues = [x for x in xs if x.const is True]
    rest = [x for x in xs if x.const is None]
    if len(trues) >= 2:
        return FALSE
    if not rest:
        return TRUE if len(trues) == 1 else FALSE
    if trues:  # exactly one always-true: all others must be false
        return and_(*(not_(x) for x in rest))
    if len(rest) == 1:
        return rest[0]
    if all(x.exact for x in rest):
        return raw("((" + ")::int + (".join(x.sql for x in rest) + ")::int) = 1")
    cnt_true = " + ".join(f"CASE WHEN {x.sql} THEN 1 ELSE 0 END" for x in rest)
    cnt_unknown = " + ".join(f"CASE WHEN ({x.sql}) IS NULL THEN 1 ELSE 0 END" for x in rest)
    return X(
        f"CASE WHEN ({cnt_true}) >= 2 THEN FALSE WHEN ({cnt_true}) + ({cnt_unknown}) = 0 "
        f"THEN FALSE WHEN ({cnt_unknown}) = 0 THEN TRUE END",
        False,
    )


def if_then_else(i: X, t: X, e: X) -> X:
    if i.const is True:
        return t
    if i.const is False:
        return e
    if t == e:
        return t
    if i.exact:
        return X(f"CASE WHEN {i.sql} THEN {t.sql} ELSE {e.sql} END", t.exact and e.exact)
    return X(f"CASE WHEN {i.sql} THEN {t.sql} WHEN NOT {i.sql} THEN {e.sql} END", False)


# Per-type checks: type name -> X, evaluated knowing jsonb_typeof(v) is that type.
Typed = dict[str, X]


def typed_const(x: X) -> Typed:
    return dict.fromkeys(TYPES, x)


def typed_and(ts: Sequence[Typed]) -> Typed:
    return {t: and_(*(c[t] for c in ts)) for t in TYPES}


def typed_or(ts: Sequence[Typed]) -> Typed:
    return {t: or_(*(c[t] for c in ts)) for t in TYPES}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Val:
    """How to reach the value being checked.

    ``v``: SQL jsonb expression.  ``text``: SQL text expression of the value when it is a
    string (``parent->>'k'`` is cheaper than ``v #>> '{}'``).  ``absent``: SQL boolean that
    is TRUE exactly when the value is absent (for optional properties / tuple items), or
    None if the value is always present.
    """

    v: str
    text: str
    absent: str | None = None


def _prop(parent: Val, key: str, required: bool) -> Val:
    k = quote_literal(key)
    return Val(
        f"({parent.v} -> {k})",
        f"({parent.v} ->> {k})",
        None if required else f"(NOT ({parent.v} ? {k}))",
    )


# --------------------------------------------------------------------------- the compiler


@dataclass
class _Ctx:
    root: Any
    alias: int = 0
    refs: list[str] = field(default_factory=list)
    depth: int = 0
    nodes: int = 0
    # (SQL text of the record's time field, SQL timestamptz it was read into): see
    # compile_predicate's time_field.
    fast_time: tuple[str, str] | None = None

    def new_alias(self) -> str:
        self.alias += 1
        return f"e{self.alias}"


def compile_predicate(
    schema: dict[str, Any] | bool,
    doc_expr: str = "doc",
    time_field: str | None = None,
    ts_expr: str = "ts",
) -> str | None:
    """Compile ``schema`` to a SQL boolean expression over the jsonb expression ``doc_expr``.

    TRUE means valid, FALSE invalid, NULL unknown (re-check in Python).  Returns None when
    the schema cannot be compiled soundly (then every row needs the Python check).
    ``doc_expr`` is inserted as it is (it should be a column name or a parenthesised
    expression); it is evaluated several times.

    With ``time_field``, a ``format: date-time`` check of that top-level property first tries
    whether its text is the canonical UTC form of ``ts_expr`` (the timestamptz the lake read
    from it), which is exact and several times cheaper than PostgreSQL's regular expression;
    other forms still go to the expression.
    """
    if not isinstance(doc_expr, str) or not doc_expr.strip():
        raise ValueError("doc_expr must be a SQL expression")
    try:
        norm = normalize(schema)
        ctx = _Ctx(root=norm)
        if time_field is not None:
            doc = Val(f"({doc_expr})", f"({doc_expr} #>> '{{}}')", None)
            ctx.fast_time = (_prop(doc, time_field, True).text, ts_expr)
        if isinstance(norm, dict) and "$id" in norm and not isinstance(norm["$id"], str):
            return None
        val = Val(f"({doc_expr})", f"({doc_expr} #>> '{{}}')", None)
        x = _materialize(_node(norm, val, ctx), val)
    except (_Unsupported, RecursionError, ValueError, TypeError):
        return None
    if len(x.sql) > _MAX_SQL:
        return None
    return x.sql


def _materialize(checks: Typed, val: Val) -> X:
    """Turn per-type checks into one expression over ``val`` (handling absence)."""
    distinct = {checks[t] for t in TYPES}
    if len(distinct) == 1:
        only = next(iter(distinct))
        if val.absent is None or only.const is True:
            return only
        # the same check for every type, but absence must still give TRUE
        return or_(only, raw(val.absent))
    typeof = f"jsonb_typeof{val.v}" if val.v.startswith("(") else f"jsonb_typeof({val.v})"
    non_false = [t for t in TYPES if checks[t].const is not False]
    if len(non_false) == 1:
        fast = _single_type_idiom(non_false[0], checks[non_false[0]], val)
        if fast is not None:
            return fast
    # Fast common case: exactly one allowed type and nothing else to check.
    if len(non_false) == 1 and checks[non_false[0]].const is True:
        test = raw(f"{typeof} = '{non_false[0]}'")
        return test if val.absent is None else or_(test, raw(val.absent))
    if val.absent is None:
        # ELSE takes the most frequent check (usually FALSE)
        counts: dict[X, int] = {}
        for t in TYPES:
            counts[checks[t]] = counts.get(checks[t], 0) + 1
        default = max(counts, key=lambda x: (counts[x], x.const is False))
        whens = [(t, checks[t]) for t in TYPES if checks[t] != default]
        else_x = default
    else:
        falses = [t for t in TYPES if checks[t].const is False]
        others = [t for t in TYPES if checks[t].const is not False]
        if len(falses) >= len(others):
            # absent -> TRUE, other types false: ELSE NOT present
            whens = [(t, checks[t]) for t in others]
            else_x = raw(val.absent)
        else:
            whens = [(t, checks[t]) for t in TYPES if checks[t].const is not True]
            else_x = TRUE
    parts = [f"CASE {typeof}"]
    for t, x in whens:
        parts.append(f" WHEN '{t}' THEN {x.sql}")
    parts.append(f" ELSE {else_x.sql} END")
    exact = all(x.exact for _, x in whens) and else_x.exact
    return X("".join(parts), exact)


_NON_STRING_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?|true|false|[\[{].*", re.S)


def _single_type_idiom(t: str, x: X, val: Val) -> X | None:
    """One-lookup forms for the commonest property schemas (exact):

    * a number in a range: jsonb orders Object > Array > Boolean > Number > String > Null,
      so ``v BETWEEN '-90'::jsonb AND '90'::jsonb`` holds only for numbers in range;
    * a string enum: ``v ->> 'k'`` of a non-string can only be a number's text, true, false
      or start with [ or {, so if no member looks like that, the text test is exact;
    * a string with a format that no such text can have (e.g. ``date-time``): likewise, the
      format test on ``v ->> 'k'`` alone is exact, which saves the ``jsonb_typeof`` lookup.
    Absent values (NULL) fall through coalesce to the absence test; where the value cannot be
    absent, a NULL text means a JSON null, which no string test accepts."""
    if x.meta is None:
        return None
    if t == "number" and x.meta[0] == "range":
        _, lo, lo_incl, hi, hi_incl = x.meta
        v = val.v
        if lo_incl and hi_incl:
            sql = f"{v} BETWEEN '{lo}'::jsonb AND '{hi}'::jsonb"
        else:
            sql = (
                f"({v} {'>=' if lo_incl else '>'} '{lo}'::jsonb AND "
                f"{v} {'<=' if hi_incl else '<'} '{hi}'::jsonb)"
            )
    elif t == "string" and x.meta[0] == "strenum":
        members = x.meta[1]
        if any(_NON_STRING_TEXT.fullmatch(m) for m in members):
            return None
        sql = x.sql
    elif t == "string" and x.meta[0] == "strformat" and x.meta[1] in FORMATS_EXCLUDING_NON_STRINGS:
        sql = x.sql
    else:
        return None
    if val.absent is None:
        if t == "string":
            # The text of a JSON null is NULL too: not a string, so invalid (an array item or a
            # required property; a missing required property is caught by its own test).
            return raw(f"coalesce({sql}, FALSE)")
        return raw(sql)
    return raw(f"coalesce({sql}, {val.absent})")


def _hard(ctx: _Ctx, why: str) -> Typed:
    """Something valid that we cannot decide in SQL (e.g. a lookahead pattern): NULL.

    Degrading locally keeps the rest of the schema decided in SQL; only the rows where the
    construct matters get NULL and go to the Python re-check."""
    return typed_const(UNKNOWN)


def _node(schema: Any, val: Val, ctx: _Ctx) -> Typed:
    if schema is True:
        return typed_const(TRUE)
    if schema is False:
        return typed_const(FALSE)
    if not isinstance(schema, dict):
        raise _Unsupported("schema must be an object or a boolean")
    ctx.depth += 1
    ctx.nodes += 1
    try:
        if ctx.nodes > _MAX_NODES:
            raise _Unsupported("schema too large")
        if ctx.depth > _MAX_DEPTH:
            raise _Unsupported("schema nested too deeply")
        if "$ref" in schema:  # draft-07: $ref ignores its siblings
            return _ref(schema["$ref"], val, ctx)
        return _keywords(schema, val, ctx)
    finally:
        ctx.depth -= 1


def _ref(ref: Any, val: Val, ctx: _Ctx) -> Typed:
    if not isinstance(ref, str):
        raise _Unsupported("$ref must be a string")
    target = _resolve_local(ctx.root, ref)
    if target is None:
        # explain() reports such a schema as broken for every document: no predicate.
        raise _Unsupported(f"unsupported $ref {ref!r}")
    if ctx.refs.count(ref) >= _REF_UNROLL:
        # Recursive schema: stop unrolling; what lies below is unknown (sound).
        return typed_const(UNKNOWN)
    ctx.refs.append(ref)
    try:
        return _node(target, val, ctx)
    finally:
        ctx.refs.pop()


def _resolve_local(root: Any, ref: str) -> Any | None:
    """Resolve '#', '#/a/b' against the root; None for anything else."""
    if not ref.startswith("#"):
        return None
    if _has_nested_id(root):
        return None
    frag = unquote(ref[1:])
    if frag == "":
        return root
    if not frag.startswith("/"):
        return None
    node = root
    for raw_tok in frag[1:].split("/"):
        tok = raw_tok.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            node = node[int(tok)]
        else:
            return None
    if not isinstance(node, (dict, bool)):
        return None
    return node


def _has_nested_id(root: Any) -> bool:
    """True if a subschema other than the root has an $id (changes $ref resolution)."""
    stack = [(root, True)]
    while stack:
        node, is_root = stack.pop()
        if isinstance(node, dict):
            if not is_root and "$id" in node and isinstance(node["$id"], str):
                return True
            for k, v in node.items():
                if k in ("enum", "const", "default", "examples"):
                    continue
                if k in ("properties", "patternProperties", "definitions", "dependencies"):
                    if isinstance(v, dict):
                        stack.extend((s, False) for s in v.values())
                    continue
                stack.append((v, False))
        elif isinstance(node, list):
            stack.extend((s, False) for s in node)
    return False


def _keywords(s: dict[str, Any], val: Val, ctx: _Ctx) -> Typed:
    parts: list[Typed] = []

    if "type" in s:
        parts.append(_type(s["type"], val))
    if "enum" in s:
        if not isinstance(s["enum"], list):
            raise _Unsupported("enum must be an array")
        parts.append(_enum(s["enum"], val))
    if "const" in s:
        parts.append(_enum([s["const"]], val))

    num = _number_checks(s, val)
    if num is not None:
        parts.append(_only("number", num))
    st = _string_checks(s, val, ctx)
    if st is not None:
        parts.append(_only("string", st))
    obj = _object_checks(s, val, ctx)
    if obj is not None:
        parts.append(_only("object", obj))
    arr = _array_checks(s, val, ctx)
    if arr is not None:
        parts.append(_only("array", arr))

    if "allOf" in s:
        subs = _subschemas(s["allOf"], "allOf")
        parts.extend(_node(sub, val, ctx) for sub in subs)
    if "anyOf" in s:
        subs = _subschemas(s["anyOf"], "anyOf")
        parts.append(typed_or([_node(sub, val, ctx) for sub in subs]))
    if "oneOf" in s:
        subs = _subschemas(s["oneOf"], "oneOf")
        compiled = [_node(sub, val, ctx) for sub in subs]
        parts.append({t: one_of([c[t] for c in compiled]) for t in TYPES})
    if "not" in s:
        inner = _node(s["not"], val, ctx)
        parts.append({t: not_(inner[t]) for t in TYPES})
    if "if" in s:
        cond = _node(s["if"], val, ctx)
        then = _node(s["then"], val, ctx) if "then" in s else typed_const(TRUE)
        else_ = _node(s["else"], val, ctx) if "else" in s else typed_const(TRUE)
        parts.append({t: if_then_else(cond[t], then[t], else_[t]) for t in TYPES})
    return typed_and(parts) if parts else typed_const(TRUE)


def _subschemas(v: Any, kw: str) -> list[Any]:
    if not isinstance(v, list) or not v:
        raise _Unsupported(f"{kw} must be a non-empty array")
    return v


def _only(t: str, x: X) -> Typed:
    """A check that applies to one JSON type; other types pass."""
    d = typed_const(TRUE)
    d[t] = x
    return d


# ----------------------------------------------------------------- type, enum, const


def _type(tv: Any, val: Val) -> Typed:
    names = [tv] if isinstance(tv, str) else tv
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _Unsupported("bad type")
    known = {"object", "array", "string", "number", "integer", "boolean", "null"}
    if any(n not in known for n in names):
        raise _Unsupported("unknown type name")
    out = typed_const(FALSE)
    for n in names:
        if n == "integer":
            if out["number"] is not TRUE:
                out["number"] = _is_integer(val)
        else:
            out[n] = TRUE
    return out


def _num(val: Val) -> str:
    return f"({val.v})::numeric"


def _is_integer(val: Val) -> X:
    return raw(f"min_scale({_num(val)}) = 0")


def _enum(members: list[Any], val: Val) -> Typed:
    out = typed_const(FALSE)
    usable = [m for m in members if jsonb_representable(m)]
    strings = [m for m in usable if isinstance(m, str)]
    numbers = [m for m in usable if is_number(m)]
    bools = {m for m in usable if isinstance(m, bool)}
    has_null = any(m is None for m in usable)
    objects = [m for m in usable if isinstance(m, dict)]
    arrays = [m for m in usable if isinstance(m, list)]
    if strings:
        uniq = list(dict.fromkeys(strings))
        if len(uniq) == 1:
            sql = f"{val.text} = {quote_literal(uniq[0])}"
        else:
            sql = f"{val.text} = ANY ({_text_array(uniq)})"
        out["string"] = X(sql, True, None, ("strenum", tuple(uniq)))
    if numbers:
        lits = list(dict.fromkeys(str(numeric_literal(n)) for n in numbers))
        if len(lits) == 1:
            out["number"] = raw(f"{_num(val)} = {lits[0]}")
        else:
            out["number"] = raw(f"{_num(val)} = ANY (ARRAY[{', '.join(lits)}]::numeric[])")
    if bools:
        if bools == {True, False}:
            out["boolean"] = TRUE
        elif True in bools:
            out["boolean"] = raw(f"({val.v})::boolean")
        else:
            out["boolean"] = raw(f"NOT ({val.v})::boolean")
    if has_null:
        out["null"] = TRUE
    for t, ms in (("object", objects), ("array", arrays)):
        if ms:
            lits = list(dict.fromkeys(jsonb_literal(m) for m in ms))
            if len(lits) == 1:
                out[t] = raw(f"{val.v} = {lits[0]}")
            else:
                out[t] = raw(f"{val.v} = ANY (ARRAY[{', '.join(lits)}])")
    return out


# ----------------------------------------------------------------- numbers


def _number_checks(s: dict[str, Any], val: Val) -> X | None:
    kws = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    if not any(k in s for k in kws):
        return None
    for k in kws:
        if k in s and not is_number(s[k]):
            raise _Unsupported(f"{k} must be a number")
    for k in kws:
        if k in s and isinstance(s[k], Decimal) and s[k].is_nan():
            raise _Unsupported("NaN in schema")
    # Lower bound: the larger of minimum (inclusive) / exclusiveMinimum.
    lo: tuple[Any, bool] | None = None  # (value, inclusive)
    hi: tuple[Any, bool] | None = None
    if "minimum" in s:
        lo = (s["minimum"], True)
    if "exclusiveMinimum" in s:
        e = s["exclusiveMinimum"]
        if lo is None or e >= lo[0]:
            lo = (e, False)
    if "maximum" in s:
        hi = (s["maximum"], True)
    if "exclusiveMaximum" in s:
        e = s["exclusiveMaximum"]
        if hi is None or e <= hi[0]:
            hi = (e, False)
    checks: list[X] = []
    x = _num(val)
    if (
        lo is not None
        and hi is not None
        and (lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1])))
    ):
        return FALSE
    lo_lit = hi_lit = None
    if lo is not None:
        lo_lit, lo_unbounded = _bound(lo[0])
        if lo_lit is None:
            if lo_unbounded is None:
                checks.append(UNKNOWN)
            elif lo_unbounded == "below-all":
                pass  # every number is above it
            else:
                return FALSE
    if hi is not None:
        hi_lit, hi_unbounded = _bound(hi[0])
        if hi_lit is None:
            if hi_unbounded is None:
                checks.append(UNKNOWN)
            elif hi_unbounded == "above-all":
                pass
            else:
                return FALSE
    if lo_lit is not None and hi_lit is not None:
        assert lo is not None and hi is not None
        if lo[0] == hi[0]:
            checks.append(raw(f"{x} = {lo_lit}"))
        else:
            rng = ("[" if lo[1] else "(") + lo_lit + "," + hi_lit + ("]" if hi[1] else ")")
            meta = ("range", lo_lit, lo[1], hi_lit, hi[1])
            checks.append(X(f"{x} <@ '{rng}'::numrange", True, None, meta))
    elif lo_lit is not None:
        assert lo is not None
        checks.append(raw(f"{x} {'>=' if lo[1] else '>'} {lo_lit}"))
    elif hi_lit is not None:
        assert hi is not None
        checks.append(raw(f"{x} {'<=' if hi[1] else '<'} {hi_lit}"))
    if "multipleOf" in s:
        m = s["multipleOf"]
        if m <= 0:
            raise _Unsupported("multipleOf must be > 0")
        lit = numeric_literal(m)
        if lit is None:
            checks.append(UNKNOWN)
        elif is_integral(m) and int(m) == 1:
            checks.append(raw(f"min_scale({x}) = 0"))
        else:
            # exact numeric modulo; huge values are left to Python
            checks.append(X(f"CASE WHEN abs({x}) < 1e900 THEN mod({x}, {lit}) = 0 END", False))
    return and_(*checks)


def _bound(b: Any) -> tuple[str | None, str | None]:
    """(literal, None) or (None, 'below-all'/'above-all') for bounds beyond any jsonb
    number, or (None, None) when we cannot tell."""
    lit = numeric_literal(b)
    if lit is not None:
        return lit, None
    if isinstance(b, Decimal) and b.is_infinite():
        return None, "below-all" if b < 0 else "above-all"
    d = b if isinstance(b, Decimal) else Decimal(b)
    if d.is_finite() and d.adjusted() > 131072:
        return None, "below-all" if d < 0 else "above-all"
    return None, None


# ----------------------------------------------------------------- strings


def _string_checks(s: dict[str, Any], val: Val, ctx: _Ctx) -> X | None:
    kws = ("minLength", "maxLength", "pattern", "format")
    if not any(k in s for k in kws):
        return None
    checks: list[X] = []
    mn = s.get("minLength")
    mx = s.get("maxLength")
    for k, v in (("minLength", mn), ("maxLength", mx)):
        if v is not None and not (is_number(v) and is_integral(v) and v >= 0):
            raise _Unsupported(f"{k} must be a non-negative integer")
    mn = int(mn) if mn is not None else None
    mx = int(mx) if mx is not None else None
    if mn is not None and mx is not None and mn > mx:
        return FALSE
    if mn == 0:
        mn = None
    length = f"length({val.text})"
    if mn is not None and mx is not None:
        checks.append(raw(f"{length} BETWEEN {mn} AND {mx}"))
    elif mn is not None:
        checks.append(raw(f"{length} >= {mn}"))
    elif mx is not None:
        checks.append(raw(f"{length} <= {mx}"))
    if "pattern" in s:
        p = s["pattern"]
        if not isinstance(p, str):
            raise _Unsupported("pattern must be a string")
        tr = translate(p)
        if tr is None:
            checks.append(_hard(ctx, f"pattern {p!r}")["string"])
        elif tr[0] != "":
            m = raw(f"{val.text} ~ {quote_literal(tr[0])}")
            checks.append(m if tr[1] else only_if_true(m))
    if "format" in s:
        f = s["format"]
        if not isinstance(f, str):
            raise _Unsupported("format must be a string")
        rx = format_sql_regex(f)
        if rx is not None:
            test = f"{val.text} ~ {quote_literal(rx)}"
            if f == "date-time" and ctx.fast_time is not None and val.text == ctx.fast_time[0]:
                test = f"({_canonical_time(val.text, ctx.fast_time[1])} OR {test})"
            checks.append(X(test, True, None, ("strformat", f)))
    return and_(*checks)


# The common shapes of exported times and the to_char() format that writes a timestamp so.
_CANONICAL_TIMES = (
    ("____-__-__T__:__:__.___Z", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    ("____-__-__T__:__:__Z", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
)


def _canonical_time(text: str, ts: str) -> str:
    """SQL that is TRUE when ``text`` is ``ts`` written in one of the canonical UTC forms, else
    FALSE (never NULL). A string equal to a real timestamp so written is a valid date-time, so
    TRUE is sound whatever ``ts`` holds; LIKE first, as it costs far less than to_char()."""
    return " OR ".join(
        f"coalesce({text} LIKE {quote_literal(shape)} AND {text} = "
        f"to_char({ts} AT TIME ZONE 'UTC', {quote_literal(fmt)}), false)"
        for shape, fmt in _CANONICAL_TIMES
    )


# ----------------------------------------------------------------- objects


def _all_entries(source: str, cols: str, pred: X, where: str = "") -> X:
    """ALL over the rows of ``source`` (a set-returning call with alias/columns ``cols``)."""
    if pred.const is True:
        return TRUE
    cond = f" AND {where}" if where else ""
    if pred.exact:
        return raw(f"NOT EXISTS (SELECT 1 FROM {source} AS {cols} WHERE NOT {pred.sql}{cond})")
    sure = f"NOT EXISTS (SELECT 1 FROM {source} AS {cols} WHERE ({pred.sql}) IS NOT TRUE{cond})"
    fail = f"EXISTS (SELECT 1 FROM {source} AS {cols} WHERE ({pred.sql}) IS FALSE{cond})"
    return X(f"CASE WHEN {sure} THEN TRUE WHEN {fail} THEN FALSE END", False)


def _any_entry(source: str, cols: str, pred: X) -> X:
    if pred.const is True:
        return raw(f"EXISTS (SELECT 1 FROM {source} AS {cols})")
    if pred.const is False:
        return FALSE
    if pred.exact:
        return raw(f"EXISTS (SELECT 1 FROM {source} AS {cols} WHERE {pred.sql})")
    some = f"EXISTS (SELECT 1 FROM {source} AS {cols} WHERE ({pred.sql}) IS TRUE)"
    none = f"NOT EXISTS (SELECT 1 FROM {source} AS {cols} WHERE ({pred.sql}) IS NOT FALSE)"
    return X(f"CASE WHEN {some} THEN TRUE WHEN {none} THEN FALSE END", False)


def _object_checks(s: dict[str, Any], val: Val, ctx: _Ctx) -> X | None:
    kws = (
        "required",
        "properties",
        "additionalProperties",
        "patternProperties",
        "minProperties",
        "maxProperties",
        "propertyNames",
        "dependencies",
    )
    if not any(k in s for k in kws):
        return None
    checks: list[X] = []
    v = val.v
    req = s.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise _Unsupported("required must be an array of strings")
    req_set = set(req)
    if any(not jsonb_representable(r) for r in req):
        return FALSE  # a key jsonb cannot hold can never be present
    req_u = list(dict.fromkeys(req))
    if len(req_u) == 1:
        checks.append(raw(f"{v} ? {quote_literal(req_u[0])}"))
    elif req_u:
        checks.append(raw(f"{v} ?& {_text_array(req_u)}"))

    props = s.get("properties", {})
    if not isinstance(props, dict):
        raise _Unsupported("properties must be an object")
    for key, sub in props.items():
        if not jsonb_representable(key):
            continue  # can never be present
        pv = _prop(val, key, key in req_set)
        checks.append(_materialize(_node(sub, pv, ctx), pv))

    pat_props = s.get("patternProperties", {})
    if not isinstance(pat_props, dict):
        raise _Unsupported("patternProperties must be an object")
    ap = s.get("additionalProperties", True)
    if not isinstance(ap, (dict, bool)):
        raise _Unsupported("additionalProperties must be a schema")
    known = [k for k in props if jsonb_representable(k)]
    if pat_props or (ap is not True and ap != {}):
        if not pat_props and ap is False:
            if known:
                checks.append(raw(f"({v} - {_text_array(known)}) = '{{}}'::jsonb"))
            else:
                checks.append(raw(f"{v} = '{{}}'::jsonb"))
        else:
            checks.append(_entries_check(known, pat_props, ap, val, ctx))

    for k, op in (("minProperties", ">="), ("maxProperties", "<=")):
        if k in s:
            n = s[k]
            if not (is_number(n) and is_integral(n) and n >= 0):
                raise _Unsupported(f"{k} must be a non-negative integer")
            if k == "minProperties" and n == 0:
                continue
            checks.append(raw(f"(SELECT count(*) FROM jsonb_object_keys({v})) {op} {int(n)}"))

    if "propertyNames" in s:
        a = ctx.new_alias()
        kv = Val(f"to_jsonb({a}.k)", f"{a}.k", None)
        pred = _materialize(_node(s["propertyNames"], kv, ctx), kv)
        checks.append(_all_entries(f"jsonb_object_keys({v})", f"{a}(k)", pred))

    if "dependencies" in s:
        deps = s["dependencies"]
        if not isinstance(deps, dict):
            raise _Unsupported("dependencies must be an object")
        for key, dep in deps.items():
            if not jsonb_representable(key):
                continue
            if isinstance(dep, list):
                if not all(isinstance(d, str) for d in dep):
                    raise _Unsupported("dependencies array must hold strings")
                if not dep:
                    continue
                if not all(jsonb_representable(d) for d in dep):
                    then = FALSE
                else:
                    then = raw(f"{v} ?& {_text_array(dict.fromkeys(dep))}")
            else:
                # the dependent schema applies to this same (object) value
                then = _node(dep, Val(val.v, val.text, None), ctx)["object"]
            checks.append(if_then_else(raw(f"{v} ? {quote_literal(key)}"), then, TRUE))
    return and_(*checks)


def _entries_check(known: list[str], pat_props: dict[str, Any], ap: Any, val: Val, ctx: _Ctx) -> X:
    """patternProperties / additionalProperties (schema) over every (key, value) entry."""
    a = ctx.new_alias()
    key_sql = f"{a}.k"
    ev = Val(f"{a}.x", f"({a}.x #>> '{{}}')", None)
    per_entry: list[X] = []
    matchers: list[X] = []
    for pat, sub in pat_props.items():
        tr = translate(pat)
        if tr is None or not tr[1]:
            # the set of keys a pattern covers must be known exactly
            return _hard(ctx, f"patternProperties pattern {pat!r}")["object"]
        m = TRUE if tr[0] == "" else raw(f"{key_sql} ~ {quote_literal(tr[0])}")
        matchers.append(m)
        sub_x = _materialize(_node(sub, ev, ctx), ev)
        per_entry.append(if_then_else(m, sub_x, TRUE))
    if ap is not True and ap != {}:
        covered = or_(raw(f"{key_sql} = ANY ({_text_array(known)})") if known else FALSE, *matchers)
        ap_x = _materialize(_node(ap, ev, ctx), ev)
        per_entry.append(if_then_else(covered, TRUE, ap_x))
    pred = and_(*per_entry)
    return _all_entries(f"jsonb_each({val.v})", f"{a}(k, x)", pred)


# ----------------------------------------------------------------- arrays


def _array_checks(s: dict[str, Any], val: Val, ctx: _Ctx) -> X | None:
    kws = ("items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains")
    if not any(k in s for k in kws):
        return None
    checks: list[X] = []
    v = val.v
    length = f"jsonb_array_length({v})"
    mn = s.get("minItems")
    mx = s.get("maxItems")
    for k, n in (("minItems", mn), ("maxItems", mx)):
        if n is not None and not (is_number(n) and is_integral(n) and n >= 0):
            raise _Unsupported(f"{k} must be a non-negative integer")
    if mn is not None and mx is not None:
        if int(mn) > int(mx):
            return FALSE
        checks.append(raw(f"{length} BETWEEN {int(mn)} AND {int(mx)}"))
    elif mn is not None and int(mn) > 0:
        checks.append(raw(f"{length} >= {int(mn)}"))
    elif mx is not None:
        checks.append(raw(f"{length} <= {int(mx)}"))

    items = s.get("items", True)
    if isinstance(items, (dict, bool)):
        if items is not True and items != {}:
            a = ctx.new_alias()
            ev = Val(f"{a}.x", f"({a}.x #>> '{{}}')", None)
            pred = _materialize(_node(items, ev, ctx), ev)
            checks.append(_all_entries(f"jsonb_array_elements({v})", f"{a}(x)", pred))
        # additionalItems is ignored when items is a single schema
    elif isinstance(items, list):
        for i, sub in enumerate(items):
            iv = Val(f"({v} -> {i})", f"({v} ->> {i})", f"({length} <= {i})")
            checks.append(_materialize(_node(sub, iv, ctx), iv))
        add = s.get("additionalItems", True)
        if add is False:
            checks.append(raw(f"{length} <= {len(items)}"))
        elif isinstance(add, dict) and add != {}:
            a = ctx.new_alias()
            ev = Val(f"{a}.x", f"({a}.x #>> '{{}}')", None)
            pred = _materialize(_node(add, ev, ctx), ev)
            src = f"jsonb_array_elements({v}) WITH ORDINALITY"
            checks.append(_all_entries(src, f"{a}(x, n)", pred, where=f"{a}.n > {len(items)}"))
        elif not isinstance(add, (dict, bool)):
            raise _Unsupported("additionalItems must be a schema")
    else:
        raise _Unsupported("items must be a schema or an array of schemas")

    if s.get("uniqueItems") is True:
        a = ctx.new_alias()
        checks.append(
            raw(
                f"(SELECT count(*) = count(DISTINCT {a}.x) "
                f"FROM jsonb_array_elements({v}) AS {a}(x))"
            )
        )
    elif "uniqueItems" in s and not isinstance(s["uniqueItems"], bool):
        raise _Unsupported("uniqueItems must be a boolean")

    if "contains" in s:
        a = ctx.new_alias()
        ev = Val(f"{a}.x", f"({a}.x #>> '{{}}')", None)
        pred = _materialize(_node(s["contains"], ev, ctx), ev)
        checks.append(_any_entry(f"jsonb_array_elements({v})", f"{a}(x)", pred))
    return and_(*checks)
