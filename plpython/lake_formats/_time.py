"""Times as the lake's records write them: RFC 3339 in UTC, ``2024-01-05T08:00:00.123Z``."""

import datetime as _dt
from typing import Any

_UTC = _dt.UTC


def from_epoch_ms(value: Any) -> str | None:
    """Milliseconds since 1970, as a JSON number or a string of digits (older Takeout files),
    as RFC 3339; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.isdigit() or not value.isascii():
            return None
        value = int(value)
    if not isinstance(value, (int, float)):
        return None
    ms = int(value)
    t = _dt.datetime(1970, 1, 1, tzinfo=_UTC) + _dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rfc3339(value: Any) -> str | None:
    """An RFC 3339 time with Z or an offset, as it is (the lake checks it); else None."""
    return value if isinstance(value, str) and value else None


def apple(value: Any) -> str | None:
    """Apple Health's ``2024-01-05 09:00:00 +0100`` as RFC 3339 (``2024-01-05T09:00:00+01:00``);
    other text is passed on for the dataset's schema to judge, None stays None."""
    if not isinstance(value, str):
        return None
    parts = value.split(" ")
    if len(parts) == 3 and len(parts[2]) == 5 and parts[2][0] in "+-":
        off = parts[2]
        return f"{parts[0]}T{parts[1]}{off[:3]}:{off[3:]}"
    return value


def ts_of(obj: dict[str, Any], prefix: str = "") -> str | None:
    """A Takeout time: ``<prefix>timestamp`` (RFC 3339, newer files) or ``<prefix>timestampMs``
    (milliseconds, string or number, older files)."""
    key = prefix + ("Timestamp" if prefix else "timestamp")
    if obj.get(key) is not None:
        return rfc3339(obj[key])
    return from_epoch_ms(obj.get(key + "Ms"))
