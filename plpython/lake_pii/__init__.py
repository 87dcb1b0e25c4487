"""Finding personal identifiers in JSON documents, for the lake's PII detection.

:func:`scan` walks a parsed document and returns where identifiers are and of which kind
(``email``, ``phone``, ``payment_card``, ``iban``, ``ip_address``, ``national_id``), never the
values themselves: a finding names a JSON path (``$.contact.email``, ``$.items[2]``) and a kind.

Plain Python (standard library only), so it runs in PL/Python with the system Python and is
unit-tested outside the database. Checks are deliberately strict where a checksum exists
(Luhn for cards, ISO 7064 mod 97 for IBANs) and anchored on separators elsewhere, so that times,
coordinates and ids common in exported personal data are not reported.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["KINDS", "Finding", "scan"]

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


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _kinds_in(text: str) -> Iterator[str]:
    s = text[:MAX_SCAN_CHARS]
    if "@" in s and _EMAIL.search(s):
        yield "email"
    digits = sum(ch.isdigit() for ch in s)
    if digits >= 7:
        for m in _CARD.finditer(s):
            d = re.sub(r"[ -]", "", m.group())
            if 13 <= len(d) <= 19 and len(set(d)) > 1 and _luhn(d):
                yield "payment_card"
                break
        if any(_iban_ok(m.group()) for m in _IBAN.finditer(s)):
            yield "iban"
        if any(
            8 <= sum(ch.isdigit() for ch in m.group()) <= 15 for m in _PHONE_INTL.finditer(s)
        ) or _PHONE_NANP.search(s):
            yield "phone"
        if _SSN.search(s) or _NINO.search(s):
            yield "national_id"
    elif _NINO.search(s):
        yield "national_id"
    if "." in s and digits >= 4:
        for m in _IPV4.finditer(s):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            yield "ip_address"
            return
    if s.count(":") >= 2:
        for m in _IPV6.finditer(s):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            yield "ip_address"
            return


def _walk(value: Any, path: str) -> Iterator[Finding]:
    if isinstance(value, str):
        for kind in _kinds_in(value):
            yield Finding(path, kind)
    elif isinstance(value, dict):
        for key, item in value.items():
            k = str(key)
            yield from _walk(
                item,
                f"{path}.{k}"
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)
                else f"{path}[{_quote(k)}]",
            )
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 10**12 <= value < 10**19
        and _luhn(str(value))
    ):
        yield Finding(path, "payment_card")  # a card number stored as a JSON number


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scan(doc: Any) -> list[Finding]:
    """The personal identifiers in a parsed JSON document: (path, kind) pairs, each once, in
    document order. Never the values."""
    seen: dict[Finding, None] = {}
    for finding in _walk(doc, "$"):
        seen.setdefault(finding, None)
    return list(seen)
