"""Spotify extended streaming history (``Streaming_History_Audio_<years>_<n>.json``: one JSON
array of plays); each play becomes a record ``{ts, ms_played, track, artist, album, track_uri,
episode, show, episode_uri, platform, country, reason_start, reason_end, shuffle, skipped,
offline, incognito}``. The IP address Spotify adds to each play is left out: a listening
history does not need it."""

from typing import Any

from lake_formats._time import rfc3339

DESCRIPTION = "Spotify extended streaming history: one record per play"
READER = "json"
MEMBER = r"(^|/)Streaming_History_(Audio|Video)_[^/]*\.json$"

_FIELDS = {
    "ms_played": "ms_played",
    "master_metadata_track_name": "track",
    "master_metadata_album_artist_name": "artist",
    "master_metadata_album_album_name": "album",
    "spotify_track_uri": "track_uri",
    "episode_name": "episode",
    "episode_show_name": "show",
    "spotify_episode_uri": "episode_uri",
    "platform": "platform",
    "conn_country": "country",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
    "shuffle": "shuffle",
    "skipped": "skipped",
    "offline": "offline",
    "incognito_mode": "incognito",
}


def convert(play: dict[str, Any]) -> dict[str, Any]:
    out = {"ts": rfc3339(play.get("ts"))}
    for source, name in _FIELDS.items():
        out[name] = play.get(source)
    return {k: v for k, v in out.items() if v is not None}
