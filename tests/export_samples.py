"""Sample export files in the real shapes of the source formats (plpython/lake_formats), each
with the records the lake should make of it, written out here by hand from the known values
(not by calling the converters), so the tests compare the lake's conversion with an independent
expectation.

- Google Takeout location history, Records.json: {"locations": [...]}, the older form
  (timestampMs as a string or a number of milliseconds) and the newer one (timestamp, RFC 3339).
- Google Takeout Semantic Location History: {"timelineObjects": [placeVisit | activitySegment]}.
- Spotify extended streaming history, Streaming_History_Audio_*.json: one JSON array of plays.
- Apple Health export.xml: <HealthData> with a DOCTYPE, <Record> elements and others.
- A Takeout zip holding the two location files and members no dataset takes.

Times are recent (the last days), inside every dataset's retention window and hot months.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

Doc = dict[str, Any]

RECORDS_MEMBER = "Takeout/Location History/Records.json"
SEMANTIC_MEMBER = "Takeout/Location History/Semantic Location History/{y}/{y}_{m}.json"

PLACES_SCHEMA: Doc = {
    "type": "object",
    "required": ["ts", "lat", "lon"],
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy": {"type": "integer", "minimum": 0},
    },
}
VISITS_SCHEMA: Doc = {
    "type": "object",
    "required": ["ts", "kind", "lat", "lon"],
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "kind": {"enum": ["place_visit", "activity_segment"]},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
    },
}
PLAYS_SCHEMA: Doc = {
    "type": "object",
    "required": ["ts", "ms_played"],
    "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "ms_played": {"type": "integer", "minimum": 0},
    },
}
HEALTH_SCHEMA: Doc = {
    "type": "object",
    "required": ["ts", "type", "value"],
    "properties": {"ts": {"type": "string", "format": "date-time"}, "type": {"type": "string"}},
}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _ms(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# -- Records.json -----------------------------------------------------------------------------


def takeout_location(
    i: int,
    now: datetime | None = None,
    *,
    step: timedelta = timedelta(minutes=7),
    invalid_every: int = 10,
) -> tuple[Doc, Doc | None]:
    """The i-th location of a Records.json, `step` before the one before it (forms rotate:
    timestampMs as a string, as a number, timestamp in RFC 3339; every 7th carries an activity)
    and the record the lake makes of it. Every `invalid_every`-th is invalid after conversion (a
    latitude beyond 90 degrees): expected None."""
    valid = i % invalid_every != 0
    t = (now or _now()) - step * i - timedelta(milliseconds=123 * (i % 8))
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    lat_e7 = 523_456_789 - (1000 * i) % 100_000_000 if valid else 1_923_456_789
    lon_e7 = 134_567_890 + (1000 * i) % 100_000_000
    loc: Doc = {"latitudeE7": lat_e7, "longitudeE7": lon_e7, "accuracy": 10 + i % 40}
    if i % 3 == 0:
        loc["timestampMs"] = str(_ms(t))
    elif i % 3 == 1:
        loc["timestampMs"] = _ms(t)
    else:
        loc["timestamp"] = _iso_ms(t)
        loc["source"] = "WIFI"
        loc["deviceTag"] = -1_234_567
        loc["platformType"] = "ANDROID"
    expected: Doc = {
        "ts": _iso_ms(t),
        "lat": lat_e7 / 1e7,
        "lon": lon_e7 / 1e7,
        "accuracy": 10 + i % 40,
    }
    if i % 3 == 2:
        expected["source"] = "WIFI"
        expected["device_tag"] = -1_234_567
    if i % 7 == 0:
        key = "timestampMs" if i % 3 != 2 else "timestamp"
        loc["activity"] = [
            {
                key: loc[key],
                "activity": [
                    {"type": "STILL", "confidence": 40},
                    {"type": "ON_FOOT", "confidence": 55},
                    {"type": "WALKING", "confidence": 5},
                ],
            }
        ]
        expected["activity"] = "ON_FOOT"
        expected["activity_confidence"] = 55
    return loc, (expected if valid else None)


def records_json(
    path: Path,
    n: int,
    now: datetime | None = None,
    *,
    step: timedelta = timedelta(minutes=7),
    invalid_every: int = 10,
) -> list[Doc | None]:
    """Write a Records.json of n locations (streamed to the file, as large as asked) and return
    the expected records (None for the invalid ones)."""
    now = now or _now()
    expected: list[Doc | None] = []
    with path.open("w") as fh:
        fh.write('{\n  "locations": [')
        for i in range(n):
            loc, exp = takeout_location(i, now, step=step, invalid_every=invalid_every)
            expected.append(exp)
            fh.write(("," if i else "") + "\n    " + json.dumps(loc))
        fh.write("\n  ]\n}\n")
    return expected


# -- Semantic Location History ----------------------------------------------------------------


def semantic_month(now: datetime | None = None) -> tuple[Doc, list[Doc | None]]:
    """A month file of Semantic Location History: visits and segments alternate, in the newer
    form (startTimestamp) and the older one (startTimestampMs, a string); the fifth object is a
    visit without a location (invalid: no lat/lon)."""
    now = now or _now()
    objects: list[Doc] = []
    expected: list[Doc | None] = []
    for i in range(6):
        start = now - timedelta(hours=5 * (i + 1))
        end = start + timedelta(hours=2)
        old = i % 2 == 1
        duration = (
            {"startTimestampMs": str(_ms(start)), "endTimestampMs": str(_ms(end))}
            if old
            else {"startTimestamp": _iso_ms(start), "endTimestamp": _iso_ms(end)}
        )
        if i % 3 == 2:
            objects.append(
                {
                    "activitySegment": {
                        "startLocation": {"latitudeE7": 523_000_000, "longitudeE7": 134_000_000},
                        "endLocation": {"latitudeE7": 524_000_000, "longitudeE7": 135_000_000},
                        "duration": duration,
                        "distance": 1500 + i,
                        "activityType": "CYCLING",
                        "confidence": "HIGH",
                        "activities": [{"activityType": "CYCLING", "probability": 90.1}],
                    }
                }
            )
            expected.append(
                {
                    "kind": "activity_segment",
                    "ts": _iso_ms(start),
                    "end": _iso_ms(end),
                    "lat": 52.3,
                    "lon": 13.4,
                    "end_lat": 52.4,
                    "end_lon": 13.5,
                    "distance": 1500 + i,
                    "activity": "CYCLING",
                    "confidence": "HIGH",
                }
            )
        else:
            location: Doc = {
                "latitudeE7": 525_200_000 + i,
                "longitudeE7": 134_050_000 + i,
                "placeId": f"ChIJAVkDPzdOqEcRcDteW0YgIQQ{i}",
                "address": f"Platz der Republik {i}, 11011 Berlin, Germany",
                "name": "Reichstag",
                "semanticType": "TYPE_SEARCHED_ADDRESS",
                "locationConfidence": 82.5,
            }
            last = i == 4
            visit: Doc = {
                "location": {} if last else location,
                "duration": duration,
                "placeConfidence": "HIGH_CONFIDENCE",
                "visitConfidence": 95,
            }
            objects.append({"placeVisit": visit})
            exp: Doc = {
                "kind": "place_visit",
                "ts": _iso_ms(start),
                "end": _iso_ms(end),
                "lat": (525_200_000 + i) / 1e7,
                "lon": (134_050_000 + i) / 1e7,
                "place_id": location["placeId"],
                "name": "Reichstag",
                "address": location["address"],
                "confidence": "HIGH_CONFIDENCE",
            }
            expected.append(None if last else exp)
    return {"timelineObjects": objects}, expected


def semantic_member(now: datetime | None = None) -> str:
    t = now or _now()
    return SEMANTIC_MEMBER.format(y=t.year, m=t.strftime("%B").upper())


# -- Spotify ----------------------------------------------------------------------------------


def spotify_history(n: int, now: datetime | None = None) -> tuple[list[Doc], list[Doc | None]]:
    """Plays of Streaming_History_Audio_<years>_0.json: tracks, with a podcast episode every
    5th; every 9th has ms_played -1 (invalid)."""
    now = now or _now()
    plays: list[Doc] = []
    expected: list[Doc | None] = []
    for i in range(n):
        ts = (now - timedelta(minutes=4 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        episode = i % 5 == 4
        played = -1 if i % 9 == 8 else 1000 * (30 + i)
        play: Doc = {
            "ts": ts,
            "username": "alice_listens",
            "platform": "Android OS 13 API 33 (Google, Pixel 7)",
            "ms_played": played,
            "conn_country": "DE",
            "ip_addr_decrypted": "203.0.113.7",
            "user_agent_decrypted": "unknown",
            "master_metadata_track_name": None if episode else f"Track {i}",
            "master_metadata_album_artist_name": None if episode else "The Artist",
            "master_metadata_album_album_name": None if episode else "The Album",
            "spotify_track_uri": None if episode else f"spotify:track:4uLU6hMCjMI75M1A2tKU{i:02d}",
            "episode_name": f"Episode {i}" if episode else None,
            "episode_show_name": "The Show" if episode else None,
            "spotify_episode_uri": f"spotify:episode:0Q86acNRm6V9GYx55SXK{i:02d}"
            if episode
            else None,
            "reason_start": "trackdone",
            "reason_end": "endplay" if i % 2 else "trackdone",
            "shuffle": i % 2 == 0,
            "skipped": None if i % 3 else True,
            "offline": False,
            "offline_timestamp": int(now.timestamp()),
            "incognito_mode": False,
        }
        plays.append(play)
        exp: Doc = {
            "ts": ts,
            "ms_played": played,
            "platform": play["platform"],
            "country": "DE",
            "reason_start": "trackdone",
            "reason_end": play["reason_end"],
            "shuffle": i % 2 == 0,
            "offline": False,
            "incognito": False,
        }
        if episode:
            exp.update(
                episode=f"Episode {i}", show="The Show", episode_uri=play["spotify_episode_uri"]
            )
        else:
            exp.update(
                track=f"Track {i}",
                artist="The Artist",
                album="The Album",
                track_uri=play["spotify_track_uri"],
            )
        if i % 3 == 0:
            exp["skipped"] = True
        expected.append(None if played < 0 else exp)
    return plays, expected


# -- Apple Health -----------------------------------------------------------------------------

HEALTH_DOCTYPE = """<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
]>
"""

WATCH = "Alice\u2019s Apple Watch"  # as Apple names devices, with a typographic apostrophe
_KINDS = [  # type, unit, value as written, value as stored
    ("HKQuantityTypeIdentifierStepCount", "count", "412", 412),
    ("HKQuantityTypeIdentifierHeartRate", "count/min", "72.5", 72.5),
    ("HKQuantityTypeIdentifierBodyMass", "kg", "70.25", 70.25),
    ("HKCategoryTypeIdentifierSleepAnalysis", None, "HKCategoryValueSleepAnalysisAsleepCore", None),
]


def _apple_time(t: datetime) -> tuple[str, str]:
    """Apple's "2024-01-05 09:00:00 +0100" (here at +01:00) and its RFC 3339 form."""
    local = t.astimezone(UTC) + timedelta(hours=1)
    return (
        local.strftime("%Y-%m-%d %H:%M:%S") + " +0100",
        local.strftime("%Y-%m-%dT%H:%M:%S") + "+01:00",
    )


def health_records(n: int, now: datetime | None = None) -> Iterator[tuple[str, Doc | None]]:
    """(the <Record> element's XML, the expected record); every 8th has no startDate (invalid:
    no time)."""
    now = now or _now()
    for i in range(n):
        kind, unit, written, stored = _KINDS[i % len(_KINDS)]
        start_apple, start = _apple_time(now - timedelta(minutes=10 * i))
        end_apple, end = _apple_time(now - timedelta(minutes=10 * i - 5))
        attrs: dict[str, str] = {"type": kind, "sourceName": WATCH}
        if unit:
            attrs["unit"] = unit
        attrs.update(
            sourceVersion="10.1",
            device="<<HKDevice: 0x600>, name:Apple Watch, manufacturer:Apple Inc.>",
            creationDate=end_apple,
            endDate=end_apple,
            value=written,
        )
        if i % 8 != 7:
            attrs["startDate"] = start_apple
        meta = i % 4 == 1
        body = ""
        if meta:
            body = '\n  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n '
        xml = (
            "<Record "
            + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
            + (f">{body}</Record>" if body else "/>")
        )
        exp: Doc = {
            "ts": start,
            "end": end,
            "type": kind.removeprefix("HKQuantityTypeIdentifier").removeprefix(
                "HKCategoryTypeIdentifier"
            ),
            "value": stored if stored is not None else written,
            "source": WATCH,
            "device": attrs["device"],
        }
        if unit:
            exp["unit"] = unit
        if meta:
            exp["metadata"] = {"HKMetadataKeyHeartRateMotionContext": "0"}
        yield xml, (exp if i % 8 != 7 else None)


def health_export(fh: IO[str], n: int, now: datetime | None = None) -> list[Doc | None]:
    """Write an export.xml of n records (with a workout and an activity summary among them, as
    real ones have) and return the expected records."""
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n' + HEALTH_DOCTYPE)
    fh.write('<HealthData locale="en_DE">\n <ExportDate value="2024-01-05 10:00:00 +0100"/>\n')
    fh.write(' <Me HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>\n')
    expected = []
    for i, (xml, exp) in enumerate(health_records(n, now)):
        fh.write(" " + xml + "\n")
        expected.append(exp)
        if i == 2:
            fh.write(
                ' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30"'
                ' durationUnit="min" sourceName="Watch" startDate="2024-01-05 08:00:00 +0100"'
                ' endDate="2024-01-05 08:30:00 +0100">\n'
                '  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" average="150"/>\n'
                " </Workout>\n"
            )
    fh.write(' <ActivitySummary dateComponents="2024-01-05" activeEnergyBurned="410"/>\n')
    fh.write("</HealthData>\n")
    return expected


# -- a Takeout zip ----------------------------------------------------------------------------


def takeout_zip(path: Path, n: int, now: datetime | None = None) -> dict[str, list[Doc | None]]:
    """A Google Takeout zip: Records.json (n locations), one month of Semantic Location
    History, and members of no source format (the archive browser, the settings). Returns the
    expected records per member."""
    now = now or _now()
    records_file = path.with_suffix(".records.json")
    expected = {RECORDS_MEMBER: records_json(records_file, n, now)}
    semantic, semantic_expected = semantic_month(now)
    expected[semantic_member(now)] = semantic_expected
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Takeout/archive_browser.html", "<html><body>Takeout</body></html>")
        zf.write(records_file, RECORDS_MEMBER)
        zf.writestr(semantic_member(now), json.dumps(semantic, indent=2))
        zf.writestr("Takeout/Location History/Settings.json", '{"retentionWindowDays": 0}')
    records_file.unlink()
    return expected
