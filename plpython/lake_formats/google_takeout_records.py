"""Google Takeout location history, ``Records.json``: ``{"locations": [...]}``; each location
becomes a record ``{ts, lat, lon, accuracy, altitude, velocity, heading, activity,
activity_confidence, source, device_tag}`` (absent fields left out): ``ts`` from ``timestamp``
(RFC 3339, newer files) or ``timestampMs`` (milliseconds as a string or a number, older files,
written as ``2024-01-05T08:00:00.123Z``), ``lat``/``lon`` in degrees from ``latitudeE7``/
``longitudeE7``, ``activity`` the most confident type of the first activity reading.

Converted in SQL (one expression over the source record ``d``, set-based, no Python per
record): these files hold a million locations and more. The record is written as JSON text and
read once as jsonb: about a third cheaper than jsonb_build_object and jsonb_strip_nulls over the
whole record (concat_ws leaves out what is absent or null; a value's own nulls are stripped as
jsonb_strip_nulls of the record would). No regular expression: PostgreSQL builds its automaton
afresh for each value (about 5 µs).

The instant of ``timestampMs`` is computed once (TIME_SQL, ``t`` in SQL) and handed to the lake
with the record, so the lake does not read ``ts`` back from the text it was written as. It is
handed only where ``ts`` is that instant's text as the lake would read it: years up to 9999
(beyond them ``to_char`` writes five digits, which RFC 3339 does not allow, and the record has
no time). Seconds and milliseconds are added apart: an interval times a number is computed in
double precision, exact to the microsecond for whole seconds up to the year 20000 but for
milliseconds only up to the year 4254. ``timestamp`` is text as sent: the lake reads it as any
record's time."""

DESCRIPTION = "Google Takeout location history (Records.json): one record per location"
READER = "items:locations"
MEMBER = r"(^|/)Location History( \(Timeline\))?/Records\.json$"


def _field(key: str, value: str) -> str:
    """`"key":value` as JSON text, NULL when the jsonb `value` is absent or JSON null."""
    return (
        f"""'"{key}":' || CASE WHEN jsonb_typeof({value}) <> 'null'"""
        f" THEN jsonb_strip_nulls({value})::text END"
    )


# The time the newer form's "timestamp" (a non-empty string) gives: it comes before timestampMs.
_TIMESTAMP = "jsonb_typeof(d -> 'timestamp') = 'string' AND d ->> 'timestamp' <> ''"

TIME_FIELD = "ts"
TIME_SQL = f"""CASE WHEN {_TIMESTAMP} THEN NULL
    WHEN length(d ->> 'timestampMs') BETWEEN 1 AND 15
         AND translate(d ->> 'timestampMs', '0123456789', '') = ''
    THEN CASE WHEN (d ->> 'timestampMs')::bigint <= 253402300799999
              THEN 'epoch'::timestamptz
                   + (d ->> 'timestampMs')::bigint / 1000 * interval '1 second'
                   + (d ->> 'timestampMs')::bigint % 1000 * interval '1 millisecond'
              END
    END"""

SQL = f"""('{{' || concat_ws(',',
    '"ts":' || CASE WHEN t IS NOT NULL
                         THEN '"' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                              || '"'
                    WHEN {_TIMESTAMP}
                         THEN (d -> 'timestamp')::text
                    WHEN length(d ->> 'timestampMs') BETWEEN 1 AND 15
                         AND translate(d ->> 'timestampMs', '0123456789', '') = ''
                         THEN '"' || to_char(('epoch'::timestamptz
                                              + (d ->> 'timestampMs')::bigint
                                                * interval '1 millisecond') AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"' END,
    '"lat":' || CASE WHEN jsonb_typeof(d -> 'latitudeE7') = 'number'
                     THEN trim_scale((d -> 'latitudeE7')::numeric / 10000000)::text END,
    '"lon":' || CASE WHEN jsonb_typeof(d -> 'longitudeE7') = 'number'
                     THEN trim_scale((d -> 'longitudeE7')::numeric / 10000000)::text END,
    {_field("accuracy", "d -> 'accuracy'")},
    {_field("altitude", "d -> 'altitude'")},
    {_field("velocity", "d -> 'velocity'")},
    {_field("heading", "d -> 'heading'")},
    {_field("source", "d -> 'source'")},
    {_field("device_tag", "d -> 'deviceTag'")},
    CASE WHEN d ? 'activity' THEN (
        SELECT nullif(concat_ws(',', {_field("activity", "a.g -> 'type'")},
                                     {_field("activity_confidence", "a.g -> 'confidence'")}), '')
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d -> 'activity' -> 0 -> 'activity')
                                              = 'array'
                                         THEN d -> 'activity' -> 0 -> 'activity' END)
               WITH ORDINALITY AS a(g, o)
         WHERE jsonb_typeof(a.g) = 'object'
         ORDER BY CASE WHEN jsonb_typeof(a.g -> 'confidence') = 'number'
                       THEN (a.g -> 'confidence')::numeric END DESC NULLS LAST, a.o
         LIMIT 1) END) || '}}')::jsonb"""
