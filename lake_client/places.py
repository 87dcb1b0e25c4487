"""Places: the client's side of lake.declare_coordinates, lake.near, lake.within and
lake.stay_points. The database computes everything (the record's point, the GiST index, the
distances, the stays) under row-level security; these send the arguments and shape the rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from lake_client.client import Lake


def _when(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def declare(
    lake: Lake, dataset: str, lat_field: str = "lat", lon_field: str = "lon", scale: float = 1
) -> dict[str, Any]:
    """lake.declare_coordinates (administrators)."""
    params = {"dataset": dataset, "lat_field": lat_field, "lon_field": lon_field, "scale": scale}
    return dict(lake._query("declare_coordinates", params)[0])


def near(
    lake: Lake,
    dataset: str,
    lat: float,
    lon: float,
    radius_m: float,
    *,
    from_ts: datetime | str | None = None,
    to_ts: datetime | str | None = None,
    max_rows: int = 1000,
) -> list[dict[str, Any]]:
    """The session user's records within radius_m of (lat, lon), nearest first (lake.near)."""
    params = {
        "dataset": dataset,
        "lat": lat,
        "lon": lon,
        "radius_m": radius_m,
        "from_ts": _when(from_ts),
        "to_ts": _when(to_ts),
        "max_rows": max_rows,
    }
    return [dict(r) for r in lake._query("near", params)]


def within(
    lake: Lake,
    dataset: str,
    geojson: dict[str, Any],
    *,
    from_ts: datetime | str | None = None,
    to_ts: datetime | str | None = None,
    max_rows: int = 10000,
) -> list[dict[str, Any]]:
    """The session user's records in a GeoJSON (Multi)Polygon, in time order (lake.within)."""
    params = {
        "dataset": dataset,
        "geojson": Jsonb(geojson),
        "from_ts": _when(from_ts),
        "to_ts": _when(to_ts),
        "max_rows": max_rows,
    }
    return [dict(r) for r in lake._query("within", params)]


def stay_points(
    lake: Lake,
    dataset: str,
    day: date | str,
    *,
    min_minutes: int = 15,
    radius_m: float = 100,
    time_zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Where the session user stayed on `day` (lake.stay_points)."""
    params = {
        "dataset": dataset,
        "day": day.isoformat() if isinstance(day, date) else day,
        "min_minutes": min_minutes,
        "radius_m": radius_m,
        "time_zone": time_zone,
    }
    return [dict(r) for r in lake._query("stay_points", params)]


def postgis_version(lake: Lake) -> str:
    """The PostGIS library the server runs (3.4 or newer: see lake_client.local.postgres)."""
    return str(lake._query("postgis_version")[0]["version"])
