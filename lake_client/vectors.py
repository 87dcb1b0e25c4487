"""Embeddings in, nearest records out: the client's side of lake.put_embeddings and lake.similar.

Vectors go in batches of 1000 (a transaction each) by binary COPY into a temporary table, using
the ``pgvector`` package's adapters; lake.put_embeddings then judges and stores the batch, so the
database's rules (dimensions, ownership, row-level security) are the only ones. Results of
:func:`similar` may be cached in Redis through :class:`lake_client.cache.LakeCache`, in the
namespace of the dataset and user: the bridge invalidates it after a change to the user's
records, and :func:`put_embeddings` after each batch of the user's vectors it committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from lake_client.errors import InputError, from_psycopg
from lake_client.queries import sql

if TYPE_CHECKING:
    from lake_client.cache import LakeCache
    from lake_client.client import Lake

BATCH_SIZE = 1000


def _vector(value: Any) -> Vector:
    """A pgvector Vector of a numpy array, a Vector, or any sequence of numbers."""
    if isinstance(value, Vector):
        return value
    try:
        if hasattr(value, "tolist"):  # numpy, without importing it
            value = value.tolist()
        return Vector([float(x) for x in value])
    except (TypeError, ValueError) as exc:
        raise InputError(f"not a vector of numbers: {str(value)[:60]}") from exc


def _copy_batch(lake: Lake, dataset: str, model: str, batch: list[tuple[int, Vector]]) -> int:
    conn = lake.conn
    try:
        if conn.adapters.types.get("vector") is None:  # once per connection
            register_vector(conn)
        conn.execute(sql("embeddings_staging"))
        with conn.cursor() as cur, cur.copy(sql("embeddings_copy")) as copy:
            copy.set_types(["int8", "vector"])
            for record_id, vec in batch:
                copy.write_row((record_id, vec))
        written = conn.execute(
            sql("embeddings_put_staged"), {"dataset": dataset, "model": model}
        ).fetchone()
        conn.commit()
    except psycopg.Error as exc:
        lake.recover()
        raise from_psycopg(exc) from exc
    return int(written["written"]) if written else 0


def put_embeddings(
    lake: Lake,
    dataset: str,
    model: str,
    items: Iterable[tuple[int, Any]],
    *,
    batch_size: int = BATCH_SIZE,
    cache: LakeCache | None = None,
) -> int:
    """Write (record id, vector) pairs of the session user's records, `batch_size` a
    transaction; returns how many were written. Each batch is an upsert per record and model,
    so a batch sent again after a failure changes nothing. With `cache`, the user's cached
    searches of the dataset are invalidated after every batch."""
    if batch_size < 1:
        raise InputError("batch_size must be at least 1")
    user = lake.current_user_id() if cache is not None else None
    total = 0
    batch: list[tuple[int, Vector]] = []
    for record_id, value in items:
        batch.append((int(record_id), _vector(value)))
        if len(batch) >= batch_size:
            total += _copy_batch(lake, dataset, model, batch)
            batch = []
            if cache is not None and user is not None:
                cache.invalidate(dataset, user)
    if batch:
        total += _copy_batch(lake, dataset, model, batch)
        if cache is not None and user is not None:
            cache.invalidate(dataset, user)
    return total


def _when(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def similar(
    lake: Lake,
    dataset: str,
    query: Any,
    k: int = 10,
    *,
    from_ts: datetime | str | None = None,
    to_ts: datetime | str | None = None,
    filter: dict[str, Any] | None = None,
    model: str | None = None,
    cache: LakeCache | None = None,
) -> list[dict[str, Any]]:
    """The session user's k nearest records (lake.similar): dicts of id, ts (RFC 3339 text),
    distance and doc, nearest first. With `cache`, read through Redis in the user's namespace
    of the dataset (a key per query, model, k, range and filter)."""
    params = {
        "dataset": dataset,
        "query": _vector(query).to_text(),
        "k": k,
        "from_ts": _when(from_ts),
        "to_ts": _when(to_ts),
        "filter": None if filter is None else Jsonb(filter),
        "model": model,
    }

    def load() -> list[dict[str, Any]]:
        return [dict(r) for r in lake._read(sql("similar"), params)]

    if cache is None:
        return load()
    user = lake.current_user_id()
    if user is None:
        return load()  # the database says why (no lake user in this session)
    key = orjson.dumps(
        [model, params["query"], k, params["from_ts"], params["to_ts"], filter],
        option=orjson.OPT_SORT_KEYS,
    )
    name = "similar." + hashlib.sha256(key).hexdigest()[:32]
    return cache.get_or_load(dataset, user, name, load)


def declare(
    lake: Lake,
    dataset: str,
    model: str,
    dimensions: int,
    metric: str = "cosine",
    *,
    ef_search: int | None = None,
    iterative_scan: str | None = None,
    max_scan_tuples: int | None = None,
    exact_below: int | None = None,
) -> dict[str, Any]:
    """lake.declare_embeddings (administrators)."""
    params = {
        "dataset": dataset,
        "model": model,
        "dimensions": dimensions,
        "metric": metric,
        "ef_search": ef_search,
        "iterative_scan": iterative_scan,
        "max_scan_tuples": max_scan_tuples,
        "exact_below": exact_below,
    }
    return dict(lake._query("declare_embeddings", params)[0])


def models(lake: Lake, dataset: str | None = None) -> list[dict[str, Any]]:
    return [dict(r) for r in lake._query("embedding_models", {"dataset": dataset})]
