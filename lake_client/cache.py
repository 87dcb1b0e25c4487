"""A Redis cache for hot lake data that a concurrent write cannot leave stale.

Keys are grouped per dataset and user, the unit a change invalidates::

    lake:{location_history}:gen                    the dataset's generation (no TTL)
    lake:{location_history:alice}:ver              the namespace's version (no TTL)
    lake:{location_history:alice}:v<G>.<N>:<name>  cached values, TTL 3600 s

The part in braces is a Redis Cluster hash tag, so a user's keys of one dataset live on one node.
Readers look up the generation and version first and use keys of that version; an invalidation
(by the bridge after a committed change, or by the writer itself) increments the version, or for
a change without one owner (a TRUNCATE, a load for many users) the dataset's generation. That
closes the stale-set race: a reader that read the version, then old rows, and fills the cache
after a write was committed and invalidated, fills a key of the old version, which no reader asks
for any more (its TTL removes it). Versions carry no TTL, so ``volatile-lru`` never evicts them;
a version that is lost anyway (a Redis that lost its data) is re-created from a random number,
never from 0, so old keys do not come back to life. A version set back by lost writes (a failover
before replication) is moved on again by the bridge (lake_client.bridge), which invalidates
again after Redis lost its stream entries, or after a cluster's masters changed.

Works with ``redis.Redis`` and ``redis.cluster.RedisCluster`` alike: every command touches one key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import redis
from redis.cluster import RedisCluster

from lake_client.errors import CacheError

T = TypeVar("T")
DEFAULT_TTL_S = 3600
DEFAULT_PREFIX = "lake"
_NO_VALUE = object()


def _check(part: str, what: str) -> str:
    # The namespace's braces are the hash tag: a name holding one would move keys to other slots.
    if not part or any(c in part for c in "{}:") or len(part) > 200:
        raise CacheError(
            f"invalid {what} for a cache key: {part[:50]!r}",
            hint="1-200 characters, without { } or :",
        )
    return part


class LakeCache:
    """Read-through and write-through caching of JSON-serialisable values per dataset and user."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        ttl: int = DEFAULT_TTL_S,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.prefix = prefix

    # -- keys ---------------------------------------------------------------------------------

    def namespace(self, dataset: str, user_id: str) -> str:
        return f"{self.prefix}:{{{_check(dataset, 'dataset')}:{_check(user_id, 'user id')}}}"

    def generation_key(self, dataset: str) -> str:
        return f"{self.prefix}:{{{_check(dataset, 'dataset')}}}:gen"

    def version_key(self, dataset: str, user_id: str) -> str:
        return self.namespace(dataset, user_id) + ":ver"

    def version(self, dataset: str, user_id: str) -> str:
        """The namespace's current version, "<generation>.<version>" (each created, at random,
        when missing)."""
        generation = self._counter(self.generation_key(dataset))
        return f"{generation}.{self._counter(self.version_key(dataset, user_id))}"

    def _counter(self, key: str) -> int:
        try:
            value = self.client.get(key)
            if value is None:
                self.client.set(key, secrets.randbits(62), nx=True)
                value = self.client.get(key)
        except redis.RedisError as exc:
            raise CacheError(f"redis: {exc}") from exc
        return int(value)  # type: ignore[arg-type]

    def key(self, dataset: str, user_id: str, name: str, version: str | None = None) -> str:
        """The key of `name` in the namespace's current (or the given) version."""
        if version is None:
            version = self.version(dataset, user_id)
        return f"{self.namespace(dataset, user_id)}:v{version}:{name}"

    # -- reading and writing ------------------------------------------------------------------

    def get(self, dataset: str, user_id: str, name: str) -> Any:
        """The cached value, or None when absent."""
        raw = self._get(self.key(dataset, user_id, name))
        return None if raw is _NO_VALUE else raw

    def get_or_load(self, dataset: str, user_id: str, name: str, load: Callable[[], T]) -> T:
        """Read-through: the cached value, or `load()` (the database), cached for the TTL. The
        version is read before loading, so a value loaded across a concurrent change lands in the
        old version's key and is never served."""
        key = self.key(dataset, user_id, name)
        raw = self._get(key)
        if raw is not _NO_VALUE:
            return raw  # type: ignore[no-any-return]
        value = load()
        self._set(key, value)
        return value

    def put(self, dataset: str, user_id: str, name: str, value: Any) -> None:
        """Write-through: after the service wrote `value` to the lake, cache it at once."""
        self._set(self.key(dataset, user_id, name), value)

    def invalidate(self, dataset: str, user_id: str | None) -> int:
        """Make every cached value of the namespace (of the whole dataset when user_id is None)
        unreachable; returns the new version (generation)."""
        pipe = self.client.pipeline(transaction=False)
        self.queue_invalidation(pipe, dataset, user_id)
        try:
            return int(pipe.execute()[-1])
        except redis.RedisError as exc:
            raise CacheError(f"redis: {exc}") from exc

    def queue_invalidation(self, pipe: Any, dataset: str, user_id: str | None) -> None:
        """The commands of :meth:`invalidate`, queued on a pipeline (the bridge sends a batch)."""
        key = (
            self.generation_key(dataset) if user_id is None else self.version_key(dataset, user_id)
        )
        pipe.set(key, secrets.randbits(62), nx=True)
        pipe.incr(key)

    def _get(self, key: str) -> Any:
        try:
            raw = self.client.get(key)
        except redis.RedisError as exc:
            raise CacheError(f"redis: {exc}") from exc
        return _NO_VALUE if raw is None else orjson.loads(raw)

    def _set(self, key: str, value: Any) -> None:
        try:
            self.client.set(key, orjson.dumps(value), ex=self.ttl)
        except redis.RedisError as exc:
            raise CacheError(f"redis: {exc}") from exc
