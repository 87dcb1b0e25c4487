"""Erasure of a person (GDPR art. 17): the database's part, then Redis's.

``lake.erase_user`` (sql/rights/erase_user.sql) removes the person from every store inside
PostgreSQL in one transaction and writes one change event (op ``e``, no user id) for what the
database cannot reach. Each bridge (lake_client.bridge), on that event and before it moves on,
looks up whom the open erasure is about and calls :func:`erase_from_redis`: the person's cache
keys go (every dataset's namespace, its version key too) and so do their entries in the bridge's
stream (XDEL; the stream's last-generated-id does not move back, so the bridge's bookkeeping
holds). ``lake.finish_erasure`` then deletes the archive files the erasure superseded and, once
every bridge has passed the event, closes the request and forgets the person's id
(``Lake.erase`` and ``lake erase`` do both, and wait for the bridges).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis
from redis.cluster import RedisCluster

__all__ = ["erase_from_redis", "owned_by"]

SCAN_COUNT = 1000
_GLOB = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def owned_by(change: dict[str, Any], user_id: str) -> bool:
    """Whether a change (as the bridge put it in the stream) is the person's: its user, or the
    user of the row (or batch) before or after it."""
    if change.get("user_id") == user_id:
        return True
    return any(
        isinstance(image, dict) and image.get("user_id") == user_id
        for image in (change.get("before"), change.get("after"))
    )


def erase_from_redis(
    client: redis.Redis | RedisCluster, user_id: str, *, stream: str, prefix: str
) -> dict[str, int]:
    """Delete the person's cache keys (``<prefix>:{<dataset>:<user>}…`` of every dataset) and
    their entries in `stream`. Idempotent. Returns how many keys and entries went."""
    keys = 0
    pattern = f"{prefix.translate(_GLOB)}:{{*:{user_id.translate(_GLOB)}}}*"
    for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        keys += int(client.delete(key))
    needle = orjson.dumps(user_id)
    entries = 0
    start = "-"
    while True:
        batch: list[Any] = client.xrange(stream, min=start, max="+", count=SCAN_COUNT) or []
        doomed: list[Any] = []
        for entry_id, fields in batch:
            raw = (fields or {}).get(b"change", (fields or {}).get("change"))
            data = raw.encode() if isinstance(raw, str) else raw
            if data and needle in data and owned_by(orjson.loads(data), user_id):
                doomed.append(entry_id)
        if doomed:
            entries += int(client.xdel(stream, *doomed))
        if len(batch) < SCAN_COUNT:
            return {"cache_keys": keys, "stream_entries": entries}
        last = batch[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
