"""Google Takeout Semantic Location History (``Semantic Location History/<year>/<year>_<MONTH>
.json``: ``{"timelineObjects": [...]}``); each object is a ``placeVisit`` or an
``activitySegment`` and becomes a record ``{kind: "place_visit" | "activity_segment", ts, end,
lat, lon, ...}``: a visit adds ``place_id``, ``name``, ``address``, ``confidence``; a segment
adds ``end_lat``, ``end_lon``, ``distance``, ``activity``, ``confidence``."""

from typing import Any

from lake_formats._time import ts_of

DESCRIPTION = (
    "Google Takeout Semantic Location History: one record per place visit or activity segment"
)
READER = "items:timelineObjects"
MEMBER = r"(^|/)Semantic Location History/[0-9]{4}/[^/]+\.json$"


def _deg(obj: Any, key: str) -> float | None:
    v = obj.get(key) if isinstance(obj, dict) else None
    return None if isinstance(v, bool) or not isinstance(v, (int, float)) else v / 1e7


def _span(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    d = obj.get("duration")
    d = d if isinstance(d, dict) else {}
    return ts_of(d, "start"), ts_of(d, "end")


def convert(item: dict[str, Any]) -> dict[str, Any]:
    if isinstance(item.get("placeVisit"), dict):
        v = item["placeVisit"]
        loc = v.get("location") if isinstance(v.get("location"), dict) else {}
        start, end = _span(v)
        out: dict[str, Any] = {
            "kind": "place_visit",
            "ts": start,
            "end": end,
            "lat": _deg(loc, "latitudeE7"),
            "lon": _deg(loc, "longitudeE7"),
            "place_id": loc.get("placeId"),
            "name": loc.get("name"),
            "address": loc.get("address"),
            "confidence": v.get("placeConfidence"),
        }
    elif isinstance(item.get("activitySegment"), dict):
        s = item["activitySegment"]
        start, end = _span(s)
        out = {
            "kind": "activity_segment",
            "ts": start,
            "end": end,
            "lat": _deg(s.get("startLocation"), "latitudeE7"),
            "lon": _deg(s.get("startLocation"), "longitudeE7"),
            "end_lat": _deg(s.get("endLocation"), "latitudeE7"),
            "end_lon": _deg(s.get("endLocation"), "longitudeE7"),
            "distance": s.get("distance"),
            "activity": s.get("activityType"),
            "confidence": s.get("confidence"),
        }
    else:
        out = {"kind": None}
    return {k: v for k, v in out.items() if v is not None}
