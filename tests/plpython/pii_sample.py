"""A labelled sample for measuring lake_pii: values as they occur in exported personal data, each
with the kinds of identifier it holds. Seeded, so every run measures the same sample.

Positives: card numbers from real issuers' prefixes and lengths with a valid Luhn digit (plain,
grouped, inside a sentence, as JSON numbers), phone numbers, e-mail addresses, IPv4 and IPv6
addresses. Negatives: epoch times in seconds, milliseconds and microseconds (as strings and
numbers, under time keys and under neutral ones), ISO dates and times, ids (random digit ids,
UUIDs, hex, order numbers) and ordinary numbers (counts, prices, coordinates).

`python tests/plpython/pii_sample.py` prints the figures that the README quotes.
"""

from __future__ import annotations

import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

from lake_pii import scan

SEED = 20261207
SIZE = 6000

# (prefix range, lengths) of real issuers, as the generator draws them.
ISSUERS = [
    ((4, 4), (16, 16, 16, 13, 19)),  # Visa
    ((51, 55), (16,)),  # Mastercard
    ((2221, 2720), (16,)),  # Mastercard 2-series
    ((34, 34), (15,)),  # Amex
    ((37, 37), (15,)),  # Amex
    ((6011, 6011), (16, 19)),  # Discover
    ((644, 649), (16,)),  # Discover
    ((65, 65), (16,)),  # Discover
    ((3528, 3589), (16,)),  # JCB
    ((62, 62), (16, 19)),  # UnionPay
    ((36, 36), (14,)),  # Diners
]


class Sample(NamedTuple):
    doc: dict[str, object]
    kinds: frozenset[str]
    label: str  # what the value is, for the error report


def luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    (lo, hi), lengths = rng.choice(ISSUERS)
    length = rng.choice(lengths)
    prefix = str(rng.randint(lo, hi))
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)


def grouped(digits: str, sep: str) -> str:
    if len(digits) == 15:
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def positives(rng: random.Random) -> Sample:
    kind = rng.choice(["card", "card", "phone", "email", "ipv4", "ipv6"])
    if kind == "card":
        number = card(rng)
        form = rng.randrange(5)
        value: object = [
            number,
            grouped(number, " "),
            grouped(number, "-"),
            f"paid with {grouped(number, ' ')} on Tuesday",
            int(number),
        ][form]
        return Sample(
            {rng.choice(["card", "note", "payment"]): value}, frozenset({"payment_card"}), "card"
        )
    if kind == "phone":
        if rng.random() < 0.5:
            cc = rng.choice(["49", "44", "33", "1", "34", "39", "31"])
            value = f"+{cc} {rng.randint(20, 99)} {_digits(rng, rng.randint(6, 8))}"
        else:
            area, exchange = rng.randint(200, 999), rng.randint(200, 999)
            value = f"({area}) {exchange}-{rng.randint(0, 9999):04d}"
        return Sample({"contact": value}, frozenset({"phone"}), "phone")
    if kind == "email":
        user = (
            "".join(rng.choice("abcdefghij.") for _ in range(rng.randint(3, 12))).strip(".") or "x"
        )
        domain = rng.choice(["example.org", "mail.example.co.uk", "example.com"])
        return Sample({"from": f"{user}@{domain}"}, frozenset({"email"}), "email")
    if kind == "ipv4":
        value = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return Sample({"ip": f"login from {value}"}, frozenset({"ip_address"}), "ipv4")
    value = "2001:db8:" + ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(6))
    return Sample({"addr": value}, frozenset({"ip_address"}), "ipv6")


NOW = datetime(2026, 12, 7, tzinfo=UTC)


def negatives(rng: random.Random) -> Sample:
    when = NOW - timedelta(seconds=rng.randint(0, 12 * 365 * 86_400))
    seconds = int(when.timestamp())
    kind = rng.choice(
        ["ms", "ms", "s", "us", "iso", "date", "id", "uuid", "hex", "order", "number"]
    )
    key = rng.choice(["timestampMs", "time", "endTime", "v", "value"])
    if kind == "ms":
        ms = seconds * 1000 + rng.randint(0, 999)
        value: object = str(ms) if rng.random() < 0.6 else ms
    elif kind == "s":
        value = str(seconds) if rng.random() < 0.5 else seconds
    elif kind == "us":
        value = str(seconds * 10**6 + rng.randint(0, 10**6 - 1))
    elif kind == "iso":
        value = when.isoformat().replace("+00:00", "Z")
    elif kind == "date":
        value = f"{when:%Y-%m-%d}"
    elif kind == "id":  # random digit ids, the honest source of false cards
        key = rng.choice(["id", "track_id", "ref"])
        value = _digits(rng, rng.choice([13, 14, 15, 16, 17, 18, 19]))
    elif kind == "uuid":
        key = "id"
        value = str(uuid.UUID(int=rng.getrandbits(128)))
    elif kind == "hex":
        key = "hash"
        value = f"{rng.getrandbits(64):016x}"
    elif kind == "order":
        key = "order"
        value = f"ORD-{when:%Y}-{rng.randint(0, 999999):06d}"
    else:
        key = rng.choice(["count", "price", "lat", "ms_played"])
        value = rng.choice(
            [rng.randint(0, 10**7), f"{rng.uniform(0, 999):.2f}", f"{rng.uniform(-90, 90):.7f}"]
        )
    return Sample({key: value}, frozenset(), kind)


def sample(size: int = SIZE, seed: int = SEED) -> list[Sample]:
    rng = random.Random(seed)
    return [positives(rng) if i % 2 else negatives(rng) for i in range(size)]


class Score(NamedTuple):
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(samples: list[Sample], kind: str | None = None) -> tuple[Score, list[Sample]]:
    """Precision and recall of lake_pii.scan over the sample (one kind, or all), and the
    samples it got wrong."""
    tp = fp = fn = 0
    wrong = []
    for s in samples:
        found = {f.kind for f in scan(s.doc)}
        expected = set(s.kinds)
        if kind is not None:
            found &= {kind}
            expected &= {kind}
        tp += len(found & expected)
        fp += len(found - expected)
        fn += len(expected - found)
        if found != expected:
            wrong.append(s)
    return Score(tp, fp, fn), wrong


if __name__ == "__main__":
    data = sample()
    for k in (None, "payment_card"):
        sc, wrong = score(data, k)
        print(
            f"{k or 'all kinds'}: precision {sc.precision:.4f} recall {sc.recall:.4f} "
            f"(tp {sc.tp}, fp {sc.fp}, fn {sc.fn}; {len(data)} values)"
        )
    for s in score(data)[1][:20]:
        print("  wrong:", s.label, s.doc, sorted(s.kinds))
