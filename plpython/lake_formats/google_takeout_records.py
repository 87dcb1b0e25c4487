"""Google Takeout location history, ``Records.json``: ``{"locations": [...]}``; each location
becomes a record ``{ts, lat, lon, accuracy, altitude, velocity, heading, activity,
activity_confidence, source, device_tag}`` (absent fields left out)."""

from typing import Any

from lake_formats._time import ts_of

DESCRIPTION = "Google Takeout location history (Records.json): one record per location"
READER = "items:locations"
MEMBER = r"(^|/)Location History( \(Timeline\))?/Records\.json$"


def _degrees(e7: Any) -> float | None:
    if isinstance(e7, bool) or not isinstance(e7, (int, float)):
        return None
    return e7 / 1e7


def _activity(loc: dict[str, Any]) -> tuple[Any, Any]:
    """The most confident activity type of the location's first activity reading."""
    readings = loc.get("activity")
    if not isinstance(readings, list) or not readings or not isinstance(readings[0], dict):
        return None, None
    guesses = [g for g in readings[0].get("activity") or [] if isinstance(g, dict)]
    if not guesses:
        return None, None
    best = max(guesses, key=lambda g: g.get("confidence") or 0)
    return best.get("type"), best.get("confidence")


def convert(loc: dict[str, Any]) -> dict[str, Any]:
    activity, confidence = _activity(loc)
    out = {
        "ts": ts_of(loc),
        "lat": _degrees(loc.get("latitudeE7")),
        "lon": _degrees(loc.get("longitudeE7")),
        "accuracy": loc.get("accuracy"),
        "altitude": loc.get("altitude"),
        "velocity": loc.get("velocity"),
        "heading": loc.get("heading"),
        "activity": activity,
        "activity_confidence": confidence,
        "source": loc.get("source"),
        "device_tag": loc.get("deviceTag"),
    }
    return {k: v for k, v in out.items() if v is not None}
