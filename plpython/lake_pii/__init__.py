"""Finding personal identifiers in JSON documents, for the lake's PII detection.

:func:`scan` walks a parsed document and returns where identifiers are and of which kind
(``email``, ``phone``, ``payment_card``, ``iban``, ``ip_address``, ``national_id``), never the
values themselves: a finding names a JSON path (``$.contact.email``, ``$.items[2]``) and a kind.

Plain Python (standard library only), so it runs in PL/Python with the system Python and is
unit-tested outside the database. Checks are deliberately strict where a checksum exists
(Luhn for cards, with an issuer's prefix and length; ISO 7064 mod 97 for IBANs) and anchored on
separators elsewhere, so that times (epoch seconds and milliseconds too), coordinates and ids
common in exported personal data are not reported. The tests measure precision and recall on a
labelled sample (tests/plpython/pii_sample.py). :data:`PREFILTER` is what the JSON text of every
document holding an identifier matches: the database checks it before a document crosses into
Python, so ordinary records never do.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "KINDS",
    "NECESSARY",
    "PREFILTER",
    "Finding",
    "clear_fields",
    "might_hold",
    "scan",
    "scan_text",
]

KINDS = ("email", "phone", "payment_card", "iban", "ip_address", "national_id")

#: Only this much of a long string is examined (findings further on are not reported).
MAX_SCAN_CHARS = 10_000

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
)
# International numbers (+ and 8-15 digits) and the North American form (555) 123-4567.
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9][0-9 ().-]{6,22}[0-9](?!\w)")
_PHONE_NANP = re.compile(r"(?<!\w)\(?[2-9][0-9]{2}\)?[ .-][2-9][0-9]{2}[ .-][0-9]{4}(?!\w)")
_CARD = re.compile(r"(?<![\w-])[0-9](?:[ -]?[0-9]){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SSN = re.compile(
    r"(?<![\w-])(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![\w-])"
)
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?![DFIQUV])[A-Z](?![DFIOQUV])[A-Z]"
    r" ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])"
)


class Finding(NamedTuple):
    path: str
    kind: str


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes (IIN ranges, as inclusive ranges of the first digits) and the lengths their
# cards have. A Luhn check alone passes one random number in ten; with the issuer's prefix and
# length, ids, counters and timestamps rarely look like a card.
_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = tuple(
    (lo, hi, frozenset(lengths))
    for lo, hi, lengths in (
        (4, 4, (13, 16, 19)),  # Visa
        (51, 55, (16,)),  # Mastercard
        (2221, 2720, (16,)),  # Mastercard (2-series)
        (34, 34, (15,)),  # American Express
        (37, 37, (15,)),  # American Express
        (6011, 6011, (16, 17, 18, 19)),  # Discover
        (644, 649, (16, 17, 18, 19)),  # Discover
        (65, 65, (16, 17, 18, 19)),  # Discover, RuPay
        (300, 305, (14, 16, 17, 18, 19)),  # Diners Club International
        (36, 36, (14, 15, 16, 17, 18, 19)),  # Diners Club International
        (38, 39, (16, 17, 18, 19)),  # Diners Club
        (3528, 3589, (16, 17, 18, 19)),  # JCB
        (62, 62, (16, 17, 18, 19)),  # UnionPay
        (2200, 2204, (16, 17, 18, 19)),  # Mir
        (50, 50, (13, 14, 15, 16, 17, 18, 19)),  # Maestro
        (56, 58, (13, 14, 15, 16, 17, 18, 19)),  # Maestro
        (6304, 6304, (13, 14, 15, 16, 17, 18, 19)),  # Maestro (UK)
        (6759, 6759, (13, 14, 15, 16, 17, 18, 19)),  # Maestro (UK)
        (60, 60, (16,)),  # RuPay
    )
)


def _issuer_ok(digits: str) -> bool:
    """Whether some issuer gives out card numbers with this prefix and length."""
    n = len(digits)
    for lo, hi, lengths in _ISSUERS:
        if n in lengths and lo <= int(digits[: len(str(lo))]) <= hi:
            return True
    return False


_EPOCH_FROM = 631_152_000  # 1990-01-01 in seconds: older times are rare in personal exports
_EPOCH_AHEAD = 10 * 366 * 86_400  # and up to ten years ahead


def _timestamp_shaped(digits: str) -> bool:
    """Seconds, milliseconds, microseconds or nanoseconds since 1970 within 1990 .. now + 10
    years: 10, 13, 16 or 19 digits. No issuer's prefix falls in that span for those lengths
    (Mastercard's 2221 would be 2040), so this costs no real card."""
    scale = {10: 1, 13: 10**3, 16: 10**6, 19: 10**9}.get(len(digits))
    if scale is None:
        return False
    return _EPOCH_FROM <= int(digits) // scale <= time.time() + _EPOCH_AHEAD


# Groups a printed card number is written in: fours (the last group shorter), or Amex and
# Diners' 4-6-5 and 4-6-4. Other groupings ("2026-11-27 0800 …") are dates or ids.
_CARD_GROUPS = re.compile(
    r"[0-9]{4}(?:[ -][0-9]{4})*(?:[ -][0-9]{1,4})?|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}"
)


def _card_ok(printed: str) -> bool:
    """Whether a run of digits (with spaces or dashes as printed) is a plausible card number:
    grouped as cards are, an issuer's prefix and length, not a timestamp, Luhn-valid."""
    d = printed.replace(" ", "").replace("-", "")
    if not 13 <= len(d) <= 19 or len(set(d)) == 1:
        return False
    if d != printed and not _CARD_GROUPS.fullmatch(printed):
        return False
    return _issuer_ok(d) and not _timestamp_shaped(d) and _luhn(d)


# Keys whose values are times ("timestampMs", "end_time", "createdAt", "ts"): digits in them are
# never a card number.
_KEY_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_TIME_WORDS = frozenset({"ts", "time", "timestamp", "date", "datetime", "epoch", "millis"})


_TIME_KEYS: dict[str, bool] = {}  # key -> whether it names a time (keys repeat)


def _time_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    known = _TIME_KEYS.get(key)
    if known is None:
        words = [w.lower() for w in _KEY_WORDS.findall(key)]
        known = bool(words) and (not _TIME_WORDS.isdisjoint(words) or words[-1] == "at")
        if len(_TIME_KEYS) < 10_000:
            _TIME_KEYS[key] = known
    return known


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _digits(text: str) -> int:
    """How many ASCII digits `text` has (bytes.translate: many times faster than str's)."""
    raw = text.encode()
    return len(raw) - len(raw.translate(None, b"0123456789"))


def _looks_like_time(s: str) -> bool:
    """An ISO 8601 date-time ("2026-11-27T08:00:00Z", "2026-11-27 08:00:00+01:00"): the most
    common digit-heavy string in exported data, and never one of the kinds."""
    return 19 <= len(s) <= 35 and s[4] == "-" and s[7] == "-" and s[10] in "Tt " and s[13] == ":"


def _kinds_in(text: str, key: object = None) -> list[str]:
    """The kinds of identifier in one string (most strings: none, found cheaply); `key`: the
    field it is the value of (digits in a time field are not a card)."""
    if len(text) < 6:
        return []  # shorter than any identifier ("a@b.co")
    s = text[:MAX_SCAN_CHARS]
    digits = _digits(s)
    at = "@" in s
    if digits < 4 and not at and ":" not in s:
        return []  # words, names, enums: no kind fits
    kinds = []
    if at and _EMAIL.search(s):
        kinds.append("email")
    if digits >= 6 and not _looks_like_time(s):
        if digits >= 13:
            if any(_card_ok(m.group()) for m in _CARD.finditer(s)) and not _time_key(key):
                kinds.append("payment_card")
            if any(_iban_ok(m.group()) for m in _IBAN.finditer(s)):
                kinds.append("iban")
        if digits >= 8 and (
            any(8 <= sum(ch.isdigit() for ch in m.group()) <= 15 for m in _PHONE_INTL.finditer(s))
            or _PHONE_NANP.search(s)
        ):
            kinds.append("phone")
        if (digits >= 9 and _SSN.search(s)) or _NINO.search(s):
            kinds.append("national_id")
    ipv4 = digits >= 4 and s.count(".") >= 3
    if (ipv4 and any(_ipv4_ok(m.group()) for m in _IPV4.finditer(s))) or (
        s.count(":") >= 2
        and not _looks_like_time(s)
        and any(_ipv6_ok(m.group()) for m in _IPV6.finditer(s))
    ):
        kinds.append("ip_address")
    return kinds


def _ipv4_ok(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6_ok(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENTS: dict[str, str] = {}  # key -> its path segment (keys repeat from record to record)


def _segment(key: str) -> str:
    seg = _SEGMENTS.get(key)
    if seg is None:
        seg = "." + key if _IDENTIFIER.fullmatch(key) else "[" + _quote(key) + "]"
        if len(_SEGMENTS) < 10_000:
            _SEGMENTS[key] = seg
    return seg


def _walk(value: Any, path: str, skip: str | None = None) -> Iterator[Finding]:
    """Findings under `value` at `path`; `skip` names a key of this object not to look at."""
    if type(value) is dict:
        for key, item in value.items():
            t = type(item)
            if t is str:
                if key != skip:
                    kinds = _kinds_in(item, key)
                    if kinds:
                        where = path + _segment(str(key))
                        for kind in kinds:
                            yield Finding(where, kind)
            elif t is dict or t is list:
                yield from _walk(item, path + _segment(str(key)))
            elif t is int and _card_number(item) and not _time_key(key):
                yield Finding(path + _segment(str(key)), "payment_card")
    elif type(value) is list:
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif type(value) is str:
        for kind in _kinds_in(value):
            yield Finding(path, kind)
    elif type(value) is int and _card_number(value):
        yield Finding(path, "payment_card")


def _card_number(value: int) -> bool:
    """A card number stored as a JSON number."""
    return 10**12 <= value < 10**19 and _card_ok(str(value))


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scan(doc: Any, skip: str | None = None) -> list[Finding]:
    """The personal identifiers in a parsed JSON document: (path, kind) pairs, each once, in
    document order. Never the values. `skip` names a top-level field not to scan (the record's
    time field, which the lake has already read as a time)."""
    seen: dict[Finding, None] = {}
    for finding in _walk(doc, "$", skip):
        seen.setdefault(finding, None)
    return list(seen)


# The necessary condition of every kind, as regular expressions over the JSON text PostgreSQL
# writes for a document. jsonb's output escapes only quotes, backslashes and control characters,
# none of which any identifier holds, so every match of a detector above appears in that text as it
# is (keys and the JSON syntax around values can only add matches). Written in the syntax Python's
# re and PostgreSQL's regular expressions share (literals, bracket classes, counted repeats,
# alternation): the database checks PREFILTER before a document crosses into Python
# (lake_internal._pii_prefilter_sql), and might_hold below is the same test.
_RUN = r"[0-9 ().+-]{7}"  # seven in a row of digits and the separators they are printed with
_CAPS = r"[A-Z]{2} ?[0-9]"  # two capitals, then a digit (a space may come between)
_AT = "@"
_COLONS = r":[0-9A-Fa-f:]"  # a colon, then a hex digit or a colon (jsonb's own: a space)
#: For each kind, what every value it is found in holds (tests/plpython/test_pii_detect.py).
NECESSARY = {
    "email": _AT,  # _EMAIL
    "phone": _RUN,  # _PHONE_INTL: + and 8-15 digits (9 or more), _PHONE_NANP: 12 or more
    "payment_card": _RUN,  # _CARD: 13-19 digits, spaces, dashes; as a JSON number: 13 digits
    "iban": _CAPS,  # _IBAN: country code and check digits
    "national_id": _RUN + "|" + _CAPS,  # _SSN: 11 digits and dashes; _NINO: AB 12 ...
    "ip_address": _RUN + "|" + _COLONS,  # _IPV4: 1.2.3.4 at least; _IPV6: "::" at least
}
#: A document whose JSON text has no match of this can hold no identifier :func:`scan` finds.
PREFILTER = "|".join((_AT, _RUN, _CAPS, _COLONS))
_PREFILTER = re.compile(PREFILTER)


def might_hold(text: str) -> bool:
    """Whether the JSON text (as PostgreSQL writes jsonb) could hold an identifier that
    :func:`scan` finds: a search for :data:`PREFILTER`. A necessary condition; it may say yes
    more often than needed, never less."""
    return _PREFILTER.search(text) is not None


def scan_text(text: str, skip: str | None = None) -> list[Finding]:
    """:func:`scan` of a JSON text, which is parsed only when :func:`might_hold` says so."""
    return scan(json.loads(text), skip) if might_hold(text) else []


# Formats whose values (as the lake asserts them) are never one of the kinds.
_CLEAR_FORMATS = frozenset({"date-time", "date", "time", "uuid"})
_BOUND = 10**12  # a number under this in magnitude is too short for a card number


def _clear(s: Any) -> bool:
    """Whether every value valid against the subschema `s` is free of identifiers."""
    if not isinstance(s, dict):
        return False
    if "enum" in s or "const" in s:
        return True  # values the schema's author wrote down
    types = s.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not types:
        return False
    for t in types:
        if t in ("boolean", "null"):
            continue
        if t in ("number", "integer"):
            lo = s.get("minimum", s.get("exclusiveMinimum"))
            hi = s.get("maximum", s.get("exclusiveMaximum"))
            if not all(isinstance(b, int | float) and -_BOUND < b < _BOUND for b in (lo, hi)):
                return False
            continue
        if t == "string":
            short = isinstance(s.get("maxLength"), int) and s["maxLength"] < 6
            if not (short or s.get("format") in _CLEAR_FORMATS):
                return False
            continue
        return False
    return True


def clear_fields(schema: Any) -> list[str]:
    """Top-level properties that the JSON Schema keeps free of personal identifiers, so a scan
    may skip them: booleans, bounded numbers, enums and constants, date-time/date/time/uuid
    strings and strings shorter than any identifier. Anything unsure is scanned."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    if any(k in schema for k in ("$ref", "allOf", "anyOf", "oneOf", "not", "if", "definitions")):
        return []  # another branch might allow more: scan everything
    return sorted(name for name, sub in schema["properties"].items() if _clear(sub))
