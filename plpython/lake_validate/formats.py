"""The lake's regular-expression and ``format`` semantics, shared by SQL and Python.

Patterns (``pattern``, ``patternProperties``)
    Python ``re.search`` of the pattern after fastjsonschema's rewrite of every ``$`` not
    preceded by a backslash into ``\\Z`` (so ``$`` means the end of the string, as in
    ECMA-262, and not "before a final newline" as in plain Python).  fastjsonschema does this
    itself for ``pattern``; :func:`lake_regex` does the same for the jsonschema side so that
    both agree.

    :func:`translate` turns a pattern of a conservative subset into a PostgreSQL ARE with
    the same meaning.  It returns ``(are, exact)``; when ``exact`` is False the ARE matches a
    *subset* of what the Python pattern matches (``\\d`` becomes ``[0-9]`` although Python's
    ``\\d`` also matches other Unicode digits), which is still usable for a sound "valid"
    verdict.  ``None`` means unsupported.

Formats
    ``FORMAT_PATTERNS`` defines the asserted formats by regexes written in the exactly
    translatable subset; Python checks them with ``re.fullmatch`` and SQL with
    ``~ '^(?:...)$'``.  Other formats are annotations only (not asserted).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# --------------------------------------------------------------------------- patterns

_DOLLAR_FINDER = re.compile(r"(?<!\\)\$")  # the same expression fastjsonschema uses


@lru_cache(maxsize=512)
def lake_regex(pattern: str) -> re.Pattern[str]:
    """Compiled Python regex with the lake's semantics (raises re.error if invalid)."""
    return re.compile(_DOLLAR_FINDER.sub(r"\\Z", pattern))


def lake_search(pattern: str, text: str) -> bool:
    return lake_regex(pattern).search(text) is not None


class _Unsupported(Exception):
    pass


_SPECIAL = set("\\^$.|?*+()[]{}")
_CLASS_ESCAPES_SUBSET = {
    "d": "0-9",
    "w": "A-Za-z0-9_",
    "s": " \\t\\n\\r\\f\\v",
}
_CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_MAX_DUP = 255  # PostgreSQL's RE_DUP_MAX
_MAX_WEIGHT = 4000  # rough bound on the expanded size of a pattern (NFA states)


def _are_char(ch: str, in_class: bool) -> str:
    """One literal character written for a PostgreSQL ARE."""
    o = ord(ch)
    if ch.isascii() and ch.isalnum():
        return ch
    if o < 0x20 or o == 0x7F or (in_class and ch.isascii()):
        return f"\\u{o:04x}"
    if ch.isascii():
        return "\\" + ch if ch != " " else " "
    # Non-ASCII: as it is (PostgreSQL matches characters, i.e. code points, in UTF-8).
    return ch


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.exact = True

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self) -> str:
        ch = self.p[self.i]
        self.i += 1
        return ch

    # alternation := sequence ('|' sequence)*
    def alternation(self, depth: int) -> tuple[str, int]:
        if depth > 20:
            raise _Unsupported("too deeply nested")
        parts = []
        weights = []
        while True:
            s, w = self.sequence(depth)
            if not s:
                raise _Unsupported("empty alternative")
            parts.append(s)
            weights.append(w)
            if self.peek() == "|":
                self.take()
                continue
            break
        return "|".join(parts), sum(weights)

    def sequence(self, depth: int) -> tuple[str, int]:
        out = []
        weight = 0
        while True:
            ch = self.peek()
            if ch is None or ch in "|)":
                break
            atom, w, quantifiable = self.atom(depth)
            q = self.peek()
            if q is not None and q in "*+?{":
                if not quantifiable:
                    raise _Unsupported("quantifier after an anchor")
                quant, mult = self.quantifier()
                nxt = self.peek()
                if nxt is not None and nxt in "*+?{":
                    raise _Unsupported("lazy/possessive or stacked quantifier")
                atom += quant
                w *= mult
            out.append(atom)
            weight += w
            if weight > _MAX_WEIGHT:
                raise _Unsupported("pattern too large")
        return "".join(out), weight

    def quantifier(self) -> tuple[str, int]:
        ch = self.take()
        if ch in "*+":
            return ch, 2
        if ch == "?":
            return ch, 1
        m = re.compile(r"\{(\d{1,3})(,(\d{1,3})?)?\}").match(self.p, self.i - 1)
        if not m:
            raise _Unsupported("'{' that is not a quantifier")
        self.i = m.end()
        lo = int(m.group(1))
        hi = int(m.group(3)) if m.group(3) is not None else None
        if lo > _MAX_DUP or (hi is not None and (hi > _MAX_DUP or hi < lo)):
            raise _Unsupported("repetition bound too large")
        if m.group(2) is None:
            return f"{{{lo}}}", max(lo, 1)
        if hi is None:
            return f"{{{lo},}}", max(lo, 2)
        return f"{{{lo},{hi}}}", max(hi, 1)

    def atom(self, depth: int) -> tuple[str, int, bool]:
        ch = self.take()
        if ch == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise _Unsupported("group extension")
            inner, w = self.alternation(depth + 1)
            if self.peek() != ")":
                raise _Unsupported("unbalanced parenthesis")
            self.take()
            return "(?:" + inner + ")", w, True
        if ch == ")":
            raise _Unsupported("unbalanced parenthesis")
        if ch == "[":
            return self.char_class(), 1, True
        if ch == ".":
            return "[^\\n]", 1, True
        if ch == "^":
            return "^", 0, False
        if ch == "$":
            if self.i >= 2 and self.p[self.i - 2] == "\\":
                # '\\$': fastjsonschema's rewrite skips it and Python keeps its odd '$'.
                raise _Unsupported("'$' after an escaped backslash")
            return "$", 0, False
        if ch in "*+?{}]":
            raise _Unsupported("misplaced special character")
        if ch == "\\":
            return self.escape(in_class=False), 1, True
        return _are_char(ch, False), 1, True

    def escape(self, in_class: bool) -> str:
        if self.peek() is None:
            raise _Unsupported("trailing backslash")
        ch = self.take()
        if ch in _CLASS_ESCAPES_SUBSET:
            self.exact = False  # Python's \d \w \s also match non-ASCII characters
            body = _CLASS_ESCAPES_SUBSET[ch]
            return body if in_class else "[" + body + "]"
        if ch in _CHAR_ESCAPES:
            return _are_char(_CHAR_ESCAPES[ch], in_class)
        if ch == "x":
            m = re.compile(r"[0-9a-fA-F]{2}").match(self.p, self.i)
            if not m:
                raise _Unsupported("bad \\x escape")
            self.i = m.end()
            return self._code_point(int(m.group(), 16), in_class)
        if ch == "u":
            m = re.compile(r"[0-9a-fA-F]{4}").match(self.p, self.i)
            if not m:
                raise _Unsupported("bad \\u escape")
            self.i = m.end()
            return self._code_point(int(m.group(), 16), in_class)
        if ch.isascii() and not ch.isalnum() and ch not in "\n":
            return _are_char(ch, in_class)
        raise _Unsupported(f"escape \\{ch}")

    def _code_point(self, cp: int, in_class: bool) -> str:
        if cp == 0 or 0xD800 <= cp <= 0xDFFF:
            raise _Unsupported("NUL or surrogate in pattern")
        return _are_char(chr(cp), in_class)

    def class_char(self) -> tuple[str, int | None]:
        """One class member: (ARE text, code point if a single literal char)."""
        ch = self.take()
        if ch == "\\":
            start = self.i
            text = self.escape(in_class=True)
            esc = self.p[start]
            if esc in _CLASS_ESCAPES_SUBSET:
                return text, None
            if esc in _CHAR_ESCAPES:
                return text, ord(_CHAR_ESCAPES[esc])
            if esc in "xu":
                return text, int(self.p[start + 1 : self.i], 16)
            return text, ord(esc)
        if ch in "[":
            raise _Unsupported("'[' inside a class")
        if ch == "$":
            raise _Unsupported("'$' inside a class")  # fastjsonschema rewrites it
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            raise _Unsupported("NUL or surrogate in pattern")
        return _are_char(ch, True), ord(ch)

    def char_class(self) -> str:
        negated = False
        if self.peek() == "^":
            self.take()
            negated = True
        if self.peek() in ("]", None):
            raise _Unsupported("empty class or leading ']'")
        items: list[str] = []
        exact_before = self.exact
        while True:
            ch = self.peek()
            if ch is None:
                raise _Unsupported("unterminated class")
            if ch == "]":
                self.take()
                break
            if ch == "-" and items and self.p[self.i + 1 : self.i + 2] != "]":
                raise _Unsupported("ambiguous '-' in class")
            text, cp = self.class_char()
            if self.peek() == "-" and self.p[self.i + 1 : self.i + 2] not in ("]", ""):
                self.take()
                if self.peek() == "[":
                    raise _Unsupported("'[' in class range")
                text2, cp2 = self.class_char()
                if cp is None or cp2 is None or cp > cp2 or cp2 > 0x7F:
                    raise _Unsupported("class range")
                items.append(text + "-" + text2)
            else:
                items.append(text)
        if negated and self.exact != exact_before:
            raise _Unsupported("negated class with \\d, \\w or \\s")
        return "[" + ("^" if negated else "") + "".join(items) + "]"


@lru_cache(maxsize=512)
def translate(pattern: str) -> tuple[str, bool] | None:
    """Translate a pattern (lake semantics) into a PostgreSQL ARE.

    Returns ``(are, exact)``: ``exact`` means the ARE matches exactly the strings the lake
    pattern matches; otherwise the ARE's matches are a subset.  ``None``: unsupported.
    """
    if not isinstance(pattern, str):
        return None
    try:
        lake_regex(pattern)
    except re.error:
        return None
    if pattern == "":
        return "", True
    parser = _Parser(pattern)
    try:
        body, _ = parser.alternation(0)
        if parser.i != len(pattern):
            raise _Unsupported("unbalanced parenthesis")
    except (_Unsupported, IndexError):
        return None
    return body, parser.exact


# --------------------------------------------------------------------------- formats

_DATE = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = (
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_ATEXT = r"[A-Za-z0-9!#%&'*+/=?^_`|~\-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = _OCTET + r"(?:\." + _OCTET + r"){3}"
_H = r"[0-9A-Fa-f]{1,4}"
_LS32 = r"(?:" + _H + ":" + _H + "|" + _IPV4 + ")"
_IPV6 = (
    "(?:"
    + "|".join(
        [
            r"(?:" + _H + r":){6}" + _LS32,
            r"::(?:" + _H + r":){5}" + _LS32,
            r"(?:" + _H + r")?::(?:" + _H + r":){4}" + _LS32,
            r"(?:(?:" + _H + r":){0,1}" + _H + r")?::(?:" + _H + r":){3}" + _LS32,
            r"(?:(?:" + _H + r":){0,2}" + _H + r")?::(?:" + _H + r":){2}" + _LS32,
            r"(?:(?:" + _H + r":){0,3}" + _H + r")?::" + _H + ":" + _LS32,
            r"(?:(?:" + _H + r":){0,4}" + _H + r")?::" + _LS32,
            r"(?:(?:" + _H + r":){0,5}" + _H + r")?::" + _H,
            r"(?:(?:" + _H + r":){0,6}" + _H + r")?::",
        ]
    )
    + ")"
)

#: The asserted formats: name -> regex body (full match), in the exactly translatable subset.
FORMAT_PATTERNS: dict[str, str] = {
    "date-time": _DATE + "T" + _TIME,
    "date": _DATE,
    "time": _TIME,
    "email": _ATEXT + r"+(?:\." + _ATEXT + r"+)*@" + _LABEL + r"(?:\." + _LABEL + r")+",
    "uuid": r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    "ipv4": _IPV4,
    "ipv6": _IPV6,
}

_FORMAT_RE = {name: re.compile(body) for name, body in FORMAT_PATTERNS.items()}

#: Formats that the ``->>`` text of a JSON value other than a string can never have: such a
#: text is a number in plain notation (``-?[0-9]+(\.[0-9]+)?``), ``true``, ``false``, or starts
#: with ``[`` or ``{``. Every asserted format needs a character such a text cannot hold where
#: the format puts it ("T" and ":" in date-time, "-" after the 4th character in date, ":" in
#: time and ipv6, "@" in email, "-" after the 8th character in uuid, three dots in ipv4), so a
#: format test that holds on ``v ->> 'k'`` also proves that the value is a string.
FORMATS_EXCLUDING_NON_STRINGS: frozenset[str] = frozenset(
    {"date-time", "date", "time", "email", "uuid", "ipv4", "ipv6"}
)


def _make_checker(rx: re.Pattern[str]) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return rx.fullmatch(value) is not None

    return check


#: name -> callable(value) -> bool (True for non-strings), used by jsonschema and
#: fastjsonschema alike.
FORMAT_CHECKERS: dict[str, Callable[[object], bool]] = {
    name: _make_checker(rx) for name, rx in _FORMAT_RE.items()
}


def always_valid(value: object) -> bool:
    """Checker for formats the lake does not assert (annotation only)."""
    return True


def format_sql_regex(name: str) -> str | None:
    """The ARE (anchored) for an asserted format, or None if the format is not asserted."""
    body = FORMAT_PATTERNS.get(name)
    if body is None:
        return None
    tr = translate(body)
    assert tr is not None and tr[1], name
    return "^(?:" + tr[0] + ")$"
