"""lake_client.cache against a real Redis and a real Redis Cluster (three masters with replicas on
loopback ports): read-through, write-through, TTL, invalidation, the stale-set race with rows
read from PostgreSQL, lost versions, and a failover."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from psycopg.types.json import Jsonb
from redis.cluster import RedisCluster

from lake_client.cache import DEFAULT_TTL_S, LakeCache
from lake_client.config import Settings
from lake_client.errors import CacheError
from tests.conftest import point
from tests.redis_cluster import LocalRedisCluster

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", "cluster"])
def cache(
    request: pytest.FixtureRequest, settings: Settings, redis_cluster: LocalRedisCluster
) -> Iterator[LakeCache]:
    """A cache with a prefix of its own, on the embedded Redis or on the cluster."""
    client: redis.Redis | RedisCluster
    if request.param == "redis":
        client = redis.Redis.from_url(settings.redis_url())
    else:
        client = redis_cluster.client()
    prefix = f"test{uuid.uuid4().hex[:8]}"
    yield LakeCache(client, prefix=prefix)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
    client.close()


def test_read_through_loads_once_and_sets_a_ttl(cache: LakeCache) -> None:
    loads: list[int] = []

    def load() -> dict[str, int]:
        loads.append(1)
        return {"steps": 412}

    assert cache.get_or_load("steps", "alice", "today", load) == {"steps": 412}
    assert cache.get_or_load("steps", "alice", "today", load) == {"steps": 412}
    assert len(loads) == 1
    ttl = cache.client.ttl(cache.key("steps", "alice", "today"))
    assert isinstance(ttl, int) and DEFAULT_TTL_S - 5 <= ttl <= DEFAULT_TTL_S
    # The version key never expires: volatile-lru cannot evict it.
    assert cache.client.ttl(cache.namespace("steps", "alice") + ":ver") == -1
    # Another user's or dataset's namespace is another cache.
    assert cache.get("steps", "bob", "today") is None
    assert cache.get("sleep", "alice", "today") is None


def test_write_through_and_invalidate(cache: LakeCache) -> None:
    cache.put("steps", "alice", "today", [1, 2])
    cache.put("steps", "alice", "week", [3])
    cache.put("steps", "bob", "today", [9])
    assert cache.get("steps", "alice", "today") == [1, 2]
    before = cache.version("steps", "alice")
    assert cache.invalidate("steps", "alice") == int(before.split(".")[1]) + 1
    assert cache.get("steps", "alice", "today") is None
    assert cache.get("steps", "alice", "week") is None
    assert cache.get("steps", "bob", "today") == [9]


def test_a_fill_across_a_concurrent_write_is_never_served(
    cache: LakeCache, conn: Conn, location_dataset: str
) -> None:
    """The stale-set race: a reader reads rows, a write commits and is invalidated, then the
    reader fills the cache with what it read. The next reader must see the write."""
    with conn.transaction():
        conn.execute("SELECT lake.act_as('alice')")
        conn.execute(
            "SELECT lake.ingest('location_history', %s)",
            [Jsonb([point(60)])],
        )

    def read() -> list[float]:
        rows = conn.execute(
            "SELECT (doc->>'lat')::float FROM user_data.location_history WHERE user_id = 'alice'"
        ).fetchall()
        return [float(r[0]) for r in rows]  # type: ignore[arg-type]

    def read_then_someone_writes() -> list[float]:
        old = read()
        with conn.transaction():
            conn.execute("UPDATE user_data.location_history SET doc = doc || '{\"lat\": 5}'")
        cache.invalidate("location_history", "alice")  # what the bridge does after the commit
        return old

    assert cache.get_or_load("location_history", "alice", "lats", read_then_someone_writes) == [1.0]
    assert cache.get_or_load("location_history", "alice", "lats", read) == [5.0]


def test_a_dataset_wide_invalidation_reaches_every_user(cache: LakeCache) -> None:
    cache.put("steps", "alice", "today", 1)
    cache.put("steps", "bob", "today", 2)
    cache.put("sleep", "alice", "today", 3)
    cache.invalidate("steps", None)  # a TRUNCATE, a load for many users
    assert cache.get("steps", "alice", "today") is None
    assert cache.get("steps", "bob", "today") is None
    assert cache.get("sleep", "alice", "today") == 3


def test_a_lost_version_does_not_bring_old_values_back(cache: LakeCache) -> None:
    cache.put("steps", "alice", "today", "old")
    version = cache.version("steps", "alice")
    cache.client.delete(cache.version_key("steps", "alice"))  # Redis lost it
    assert cache.version("steps", "alice") != version
    assert cache.get("steps", "alice", "today") is None


@pytest.mark.parametrize("bad", ["{x}", "a:b", "", "x" * 201])
def test_hostile_names_are_refused(cache: LakeCache, bad: str) -> None:
    with pytest.raises(CacheError, match="invalid"):
        cache.put("steps", bad, "today", 1)
    with pytest.raises(CacheError, match="invalid"):
        cache.get(bad, "alice", "today")


def test_a_namespace_lives_in_one_cluster_slot(redis_cluster: LocalRedisCluster) -> None:
    client = redis_cluster.client()
    cache = LakeCache(client, prefix="slot")
    keys = [
        cache.namespace("steps", "alice") + ":ver",
        cache.key("steps", "alice", "today", "1.7"),
        cache.key("steps", "alice", "a-much-longer-name", "1.8"),
    ]
    assert len({client.keyslot(k) for k in keys}) == 1
    client.close()


def test_the_cache_survives_a_failover() -> None:
    redis_cluster = LocalRedisCluster().start()  # its own: a master dies here
    try:
        _survive_failover(redis_cluster)
    finally:
        redis_cluster.stop()


def _survive_failover(redis_cluster: LocalRedisCluster) -> None:
    client = redis_cluster.client()
    cache = LakeCache(client, prefix=f"fo{uuid.uuid4().hex[:6]}")
    cache.put("steps", "alice", "today", "before")
    ns_key = cache.namespace("steps", "alice") + ":ver"
    dead = redis_cluster.master_of(ns_key)
    redis_cluster.kill(dead)
    redis_cluster.wait_failover(dead, ns_key)
    # The promoted replica serves the namespace: a value may have been lost with the master
    # (replication is asynchronous) but none is stale, and writes and invalidations work.
    client = redis_cluster.client()
    cache = LakeCache(client, prefix=cache.prefix)
    assert cache.get("steps", "alice", "today") in ("before", None)
    cache.invalidate("steps", "alice")
    assert cache.get("steps", "alice", "today") is None
    assert cache.get_or_load("steps", "alice", "today", lambda: "after") == "after"
    assert cache.get("steps", "alice", "today") == "after"
    client.close()
