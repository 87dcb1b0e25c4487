"""Apple Health ``export.xml``: each ``<Record type= unit= value= startDate= endDate=
sourceName= ...>`` (read by the client as an object of its attributes, with its
``MetadataEntry`` children as ``metadata``) becomes a record ``{ts, end, type, unit, value,
source, device, metadata}``: ``type`` without Apple's ``HKQuantityTypeIdentifier`` /
``HKCategoryTypeIdentifier`` prefix, ``value`` a number where it is one, times in RFC 3339."""

from typing import Any

from lake_formats._time import apple

DESCRIPTION = "Apple Health export.xml: one record per <Record>"
READER = "xml:Record"
MEMBER = r"(^|/)export\.xml$"

_PREFIXES = ("HKQuantityTypeIdentifier", "HKCategoryTypeIdentifier", "HKDataType")


def _type(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    for prefix in _PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return value


def _value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if number != number or number in (float("inf"), float("-inf")):
        return value
    return (
        int(number)
        if number.is_integer() and "." not in value and "e" not in value.lower()
        else number
    )


def convert(rec: dict[str, Any]) -> dict[str, Any]:
    out = {
        "ts": apple(rec.get("startDate")),
        "end": apple(rec.get("endDate")),
        "type": _type(rec.get("type")),
        "unit": rec.get("unit"),
        "value": _value(rec.get("value")),
        "source": rec.get("sourceName"),
        "device": rec.get("device"),
        "metadata": rec.get("metadata") or None,
    }
    return {k: v for k, v in out.items() if v is not None}
