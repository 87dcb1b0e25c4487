"""JSON value helpers shared by the compiler and the explainer.

The lake judges numbers by their exact decimal value, as PostgreSQL's ``jsonb`` stores them
(``numeric``): 0.1 is one tenth, 1 equals 1.0, and 12345678901234567890.123456789 keeps all
its digits.  Python's ``json`` module would turn non-integers into binary floats, so
documents are parsed with :func:`loads` (non-integers become ``Decimal``), and schemas and
already-parsed documents are passed through :func:`normalize` (a float becomes the
``Decimal`` of its shortest repr, i.e. the number the JSON text most likely spelled).

Stdlib only: this module is loaded inside PostgreSQL by PL/Python.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

# Python refuses int() of strings longer than this (CVE-2020-10735 guard, default 4300).
_MAX_INT_DIGITS = 4000


def parse_int(text: str) -> int | Decimal:
    """``json`` parse_int hook: exact ints, Decimal for ints too long for int()."""
    if len(text) > _MAX_INT_DIGITS:
        return Decimal(text)
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """Parse JSON text with exact numbers (Decimal for non-integers)."""
    return json.loads(
        text, parse_float=Decimal, parse_int=parse_int, parse_constant=_reject_constant
    )


def normalize(value: Any) -> Any:
    """Return ``value`` with every float replaced by an exact Decimal (iterative).

    Tuples become lists.  Other values are returned as they are (no copy when nothing
    changes would be nicer, but schemas are small and documents come through loads()).
    """
    if isinstance(value, float):
        return _float_to_decimal(value)
    if not isinstance(value, (dict, list, tuple)):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        src, dst, slot = stack.pop()
        if isinstance(src, dict):
            new: Any = {}
            dst[slot] = new
            for k, v in src.items():
                if isinstance(v, (dict, list, tuple)):
                    new[k] = None
                    stack.append((v, new, k))
                else:
                    new[k] = _float_to_decimal(v) if isinstance(v, float) else v
        else:
            new = [None] * len(src)
            dst[slot] = new
            for i, v in enumerate(src):
                if isinstance(v, (dict, list, tuple)):
                    stack.append((v, new, i))
                else:
                    new[i] = _float_to_decimal(v) if isinstance(v, float) else v
    return root[0]


def _float_to_decimal(f: float) -> Decimal:
    if math.isnan(f):
        return Decimal("NaN")
    if math.isinf(f):
        return Decimal("Infinity") if f > 0 else Decimal("-Infinity")
    return Decimal(repr(f))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def is_integral(value: Any) -> bool:
    """True for a JSON number with a zero fractional part (1, 1.0, 1e3)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return False
        t = value.as_tuple()
        exp = t.exponent
        assert isinstance(exp, int)
        if exp >= 0:
            return True
        digits = t.digits
        frac = digits[exp:] if -exp <= len(digits) else digits
        return not any(frac)
    return False


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values as JSON Schema (and jsonb) define it.

    Numbers compare by value (1 == 1.0), booleans are not numbers, arrays compare in order,
    objects by key set and values.  Iterative, so deep values do not overflow the stack.
    """
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x is y):
                return False
        elif is_number(x) or is_number(y):
            if not (is_number(x) and is_number(y)):
                return False
            if _num(x) != _num(y):
                return False
        elif isinstance(x, str) or isinstance(y, str):
            if not (isinstance(x, str) and isinstance(y, str) and x == y):
                return False
        elif x is None or y is None:
            if not (x is None and y is None):
                return False
        elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, dict) and isinstance(y, dict):
            if len(x) != len(y):
                return False
            for k, v in x.items():
                if k not in y:
                    return False
                stack.append((v, y[k]))
        else:
            return False
    return True


def _num(x: Any) -> Any:
    return _float_to_decimal(x) if isinstance(x, float) else x


def hashable_key(value: Any) -> Any:
    """A hashable key such that json_equal(a, b) <=> hashable_key(a) == hashable_key(b)."""
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        d = _num(value)
        if isinstance(d, Decimal):
            if d.is_finite() and is_integral(d) and d.adjusted() < _MAX_INT_DIGITS:
                return ("n", int(d))
            return ("n", d.normalize()) if d.is_finite() else ("n", str(d))
        return ("n", d)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, (list, tuple)):
        return ("a", tuple(hashable_key(v) for v in value))
    if isinstance(value, dict):
        return ("o", frozenset((k, hashable_key(v)) for k, v in value.items()))
    return ("?", repr(value))


def _bad_text(s: str) -> bool:
    """True if the string cannot occur in jsonb (NUL or an unpaired surrogate)."""
    if "\x00" in s:
        return True
    return any("\ud800" <= ch <= "\udfff" for ch in s) if not s.isascii() else False


def jsonb_representable(value: Any) -> bool:
    """Can ``value`` be stored in jsonb at all?  (No NUL, no lone surrogate, finite numbers
    within numeric's range.)  A schema constant that is not representable can never equal a
    stored document value."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _bad_text(v):
                return False
        elif isinstance(v, bool) or v is None:
            pass
        elif is_number(v):
            if numeric_literal(v) is None:
                return False
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str) or _bad_text(k):
                    return False
                stack.append(x)
        else:
            return False
    return True


# PostgreSQL numeric: up to 131072 digits before the point, 16383 after.  We refuse to emit
# literals longer than this many characters (a schema bound of 1e5000 is not sensible).
_MAX_LITERAL = 1100


def numeric_literal(value: Any) -> str | None:
    """Plain-notation decimal text of a number, or None if PostgreSQL cannot hold it (or it
    is absurdly long)."""
    if isinstance(value, bool) or not is_number(value):
        return None
    d = _num(value)
    if isinstance(d, int):
        s = str(d) if abs(d) < 10**_MAX_LITERAL else None
        return s
    assert isinstance(d, Decimal)
    if not d.is_finite():
        return None
    if d.adjusted() > _MAX_LITERAL or d.adjusted() < -_MAX_LITERAL:
        return None
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if -exp > 16383:
        return None
    s = format(d, "f")
    if s in ("-0", "-0." + "0" * (len(s) - 3)):
        s = s[1:]
    return s


def json_text(value: Any) -> str:
    """Compact JSON text of a (normalized) value; Decimals in plain notation.

    Raises ValueError for values jsonb cannot hold (see jsonb_representable)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Lit):
            out.append(v.text)
        elif isinstance(v, str):
            if _bad_text(v):
                raise ValueError("string not representable in jsonb")
            out.append(json.dumps(v, ensure_ascii=False))
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif v is None:
            out.append("null")
        elif is_number(v):
            lit = numeric_literal(v)
            if lit is None:
                raise ValueError("number not representable in jsonb")
            out.append(lit)
        elif isinstance(v, (list, tuple)):
            items: list[Any] = [_Lit("[")]
            for i, x in enumerate(v):
                if i:
                    items.append(_Lit(","))
                items.append(x)
            items.append(_Lit("]"))
            stack.extend(reversed(items))
        elif isinstance(v, dict):
            items = [_Lit("{")]
            for i, (k, x) in enumerate(v.items()):
                if not isinstance(k, str) or _bad_text(k):
                    raise ValueError("key not representable in jsonb")
                if i:
                    items.append(_Lit(","))
                items.append(_Lit(json.dumps(k, ensure_ascii=False) + ":"))
                items.append(x)
            items.append(_Lit("}"))
            stack.extend(reversed(items))
        else:
            raise ValueError(f"not a JSON value: {type(v).__name__}")
    return "".join(out)


class _Lit:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def render(value: Any, limit: int = 200) -> str:
    """Short JSON-like rendering of a value for messages: at most ``limit`` characters of it
    (then an ellipsis), never walking more of the value than needed."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [value]
    truncated = False
    while stack:
        if size > limit:
            truncated = True
            break
        v = stack.pop()
        if isinstance(v, _Lit):
            piece = v.text
        elif isinstance(v, str):
            piece = json.dumps(v[: limit + 1], ensure_ascii=False)
            if len(v) > limit + 1:
                piece = piece[:-1] + "…"
        elif v is True:
            piece = "true"
        elif v is False:
            piece = "false"
        elif v is None:
            piece = "null"
        elif is_number(v):
            piece = _render_number(v, limit)
        elif isinstance(v, (list, tuple)):
            items: list[Any] = [_Lit("[")]
            for i, x in enumerate(v):
                if i:
                    items.append(_Lit(", "))
                items.append(x)
                if i > limit:
                    break
            items.append(_Lit("]"))
            stack.extend(reversed(items))
            continue
        elif isinstance(v, dict):
            items = [_Lit("{")]
            for i, (k, x) in enumerate(v.items()):
                if i:
                    items.append(_Lit(", "))
                items.append(_Lit(json.dumps(str(k)[: limit + 1], ensure_ascii=False) + ": "))
                items.append(x)
                if i > limit:
                    break
            items.append(_Lit("}"))
            stack.extend(reversed(items))
            continue
        else:
            piece = repr(v)[: limit + 1]
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    if truncated or len(text) > limit:
        return text[:limit] + "…"
    return text


def _render_number(v: Any, limit: int) -> str:
    d = _num(v)
    if isinstance(d, Decimal):
        if d.is_finite() and abs(d.adjusted()) <= 60:
            return format(d, "f")
        return str(d)
    if isinstance(d, int) and d.bit_length() > 200:
        return f"{Decimal(d):.6E}" if d.bit_length() < 40000 else "<huge integer>"
    return str(d)
