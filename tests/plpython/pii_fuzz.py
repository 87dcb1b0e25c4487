"""Random JSON documents for checking the PII pre-filter (lake_pii.PREFILTER): documents with and
without identifiers in many shapes -- nested objects and arrays, unicode, quotes, backslashes and
control characters (which JSON escapes), identifiers printed with every separator the detectors
allow, inside sentences, as JSON numbers and as strings -- and near misses (digit runs, hex and
colons, capitals and digits) that the detectors turn down. Seeded: every run checks the same
documents. Plus ordinary location records shaped like those `make bench` generates.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pii_sample import luhn_complete

Doc = dict[str, object]

# Issuer prefixes and a length each, for card numbers.
_CARD_PREFIXES = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("2221", 16), ("34", 15),
                  ("37", 15), ("6011", 16), ("65", 19), ("3528", 16), ("62", 17), ("36", 14),
                  ("300", 14), ("2200", 16), ("50", 13), ("6304", 18), ("60", 16)]  # fmt: skip
_SEPARATORS = [" ", "-", ".", "", " - ", "  ", "/", "(", ")", "+", ":", ",", "\n", "\t"]
_AROUND = ["", " ", "x", "é", "日本", "٣", '"', "\\", "\u0001", "(", "+", "-", ".", ":", "@", "AB"]
_WORDS = [
    "walking",
    "pixel-7",
    "Berlin",
    "Zürich",
    "naïve",
    "日本語",
    "ok",
    "n/a",
    "Straße",
    "café ☕",
    "O'Brien",
    'say "hi"',
    "tab\there",
    "back\\slash",
    "GPS",
    "v1.2.3",
]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _group(rng: random.Random, digits: str) -> str:
    """`digits` printed in groups, as people and forms write them."""
    style = rng.randrange(4)
    if style == 0:
        return digits
    sep = rng.choice([" ", "-"])
    if style == 1:  # fours
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    if style == 2 and len(digits) in (14, 15):  # 4-6-5 / 4-6-4
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    cuts = sorted(rng.sample(range(1, len(digits)), rng.randint(1, 4)))  # anywhere
    return sep.join(digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True))


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    return luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "CH"])
    bban = (
        _digits(rng, 18)
        if rng.random() < 0.5
        else "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + _digits(rng, 14)
    )
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    text = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        text = " ".join(text[i : i + 4] for i in range(0, len(text), 4))
    return text


def identifier(rng: random.Random) -> str:
    """An identifier of some kind, printed one of the ways it occurs."""
    kind = rng.randrange(11)
    if kind == 0:
        return _group(rng, card(rng))
    if kind == 1:
        return iban(rng)
    if kind == 2:
        user = rng.choice(["jane.doe", "a", "x+tag", "o'neil", "ünï", "j_d-1"])
        return f"{user}@{rng.choice(['example.org', 'mail.co.uk', 'x-y.io'])}"
    if kind == 3:  # international phone
        sep = rng.choice([" ", "-", ".", ""])
        return (
            "+"
            + rng.choice("123456789")
            + sep.join(_digits(rng, rng.randint(1, 4)) for _ in range(rng.randint(3, 4)))
        )
    if kind == 4:  # North American
        a, b = rng.choice(" .-"), rng.choice(" .-")
        area = rng.choice("23456789") + _digits(rng, 2)
        if rng.random() < 0.3:
            area = f"({area})"
        return f"{area}{a}{rng.choice('23456789')}{_digits(rng, 2)}{b}{_digits(rng, 4)}"
    if kind == 5:  # US SSN
        return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    if kind == 6:  # UK NINO
        sep = rng.choice(["", " "])
        return sep.join(["AB", _digits(rng, 2), _digits(rng, 2), _digits(rng, 2), "C"])
    if kind == 7:
        return ".".join(str(rng.randrange(rng.choice([10, 256]))) for _ in range(4))
    if kind == 8:
        groups = [f"{rng.randrange(65536):x}" for _ in range(8)]
        if rng.random() < 0.5:
            i = rng.randrange(1, 7)
            return ":".join(groups[:i]) + "::" + ":".join(groups[i + 2 :])
        return ":".join(groups)
    if kind == 9:
        return rng.choice(["::1", "fe80::1", "::", "1::", "::ffff:10.0.0.1"])
    return _group(rng, _digits(rng, rng.randint(6, 19)))  # maybe one, maybe not


def near_miss(rng: random.Random) -> str:
    """Strings made of what identifiers are made of, mostly not one."""
    alphabet = rng.choice(["0123456789 -", "0123456789abcdefABCDEF:", "0123456789.()+ -",
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", "0123456789@.:"])  # fmt: skip
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))


def text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.35:
            piece = identifier(rng)
        elif roll < 0.65:
            piece = near_miss(rng)
        else:
            piece = rng.choice(_WORDS)
        pieces.append(rng.choice(_AROUND) + piece + rng.choice(_AROUND))
    return rng.choice(_SEPARATORS).join(pieces)


def number(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.3:
        return int(card(rng))  # a card number as a JSON number
    if roll < 0.6:
        return int(_digits(rng, rng.randint(1, 19)) or "0") * rng.choice([1, -1])
    return round(rng.uniform(-1e6, 1e6), rng.randint(0, 9))


def value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return {key(rng): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if depth < 3 and roll < 0.25:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.7:
        return text(rng)
    if roll < 0.9:
        return number(rng)
    return rng.choice([True, False, None])


def key(rng: random.Random) -> str:
    return rng.choice(["note", "k", "contact", "paid", "from", "ref", "odd key", "ключ", "x.y",
                       "createdAt", "timestampMs", "endTime", 'q"uote', "n", "items"])  # fmt: skip


def document(rng: random.Random) -> Doc:
    """A random document: a few fields of random values, at any depth."""
    return {key(rng): value(rng) for _ in range(rng.randint(1, 5))}


def documents(seed: int, count: int) -> list[Doc]:
    rng = random.Random(seed)
    return [document(rng) for _ in range(count)]


def location_records(seed: int, count: int) -> list[Doc]:
    """Ordinary location records, shaped like those bench/ingest.py generates (the demo's
    schema): the documents the pre-filter must rule out without entering Python."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=20)
    lat, lon = 52.52, 13.405
    docs = []
    for i in range(count):
        lat += (52.52 - lat) * 0.05 + rng.gauss(0, 0.002)
        lon += (13.405 - lon) * 0.05 + rng.gauss(0, 0.003)
        ts = start + timedelta(seconds=30 * i + rng.random() * 15)
        docs.append(
            {
                "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
                "lat": round(lat, 7),
                "lon": round(lon, 7),
                "accuracy_m": round(abs(rng.gauss(12, 8)) + 1, 1),
                "altitude_m": round(40 + rng.gauss(0, 20), 1),
                "source": rng.choice(["gps", "wifi", "cell"]),
                "activity": rng.choice(["still", "walking", "in_vehicle", "on_bicycle"]),
                "device": rng.choice(["pixel-7", "iphone-13"]),
            }
        )
    return docs
