"""Vectors benchmark: the filtered nearest-neighbour search of lake.similar under RLS.

    .venv/bin/python bench/vectors.py [--rows 1000000] [--users 100] [--dims 384] [--months 4]
                                      [--queries 5] [--rebuild] [--drop]

Builds (once) the scratch database lake_bench_vectors on the lake's server: a dataset of --rows
records spread evenly over --users users (each holds 1 / users of the rows) and the last
--months months, an embedding model of --dims dimensions (cosine), and one vector per record,
written as the service writes them: Lake.put_embeddings as an administrator acting for each user,
batches of 1000 by binary COPY. The HNSW indexes (one per month) are built after the load, as a
bulk load should (maintenance_work_mem 2GB, one parallel worker). The build takes long on two
cores, so the database is kept and reused by the next run with the same parameters; --rebuild
makes it again, --drop removes it at the end.

The vectors are clustered, not uniform: 1000 centres drawn from a normal distribution, each
vector a centre plus Gaussian noise, normalised (numpy, seed 20261207). Embeddings of real
records cluster by topic; uniform random vectors in 384 dimensions are all nearly equidistant,
which makes "the 10 nearest" a near-tie that no index, and no user, cares about. The queries are
fresh draws from the same distribution (not stored vectors).

For each search setting (the model's ef_search / iterative_scan / max_scan_tuples, set with
lake.declare_embeddings), every user asks --queries queries through lake.similar(k = 10) with
the user's own identity, so row-level security filters every search to that user's 1 %. Printed:
recall@10 against the exact 10 nearest of the user's own rows (computed in numpy), how many
searches returned fewer than 10, and p50 / p99 latency of the call as the client sees it. The
first line is lake.similar's exact path (the user's own vectors by the (user_id, model, ts)
index, sorted), which it takes for a user with fewer than the model's exact_below vectors; the
others walk the HNSW indexes (exact_below 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts

from lake_client.client import Lake

DB = "lake_bench_vectors"
ROLE = "bench_vectors_admin"
DATASET = "notes"
MODEL = "minilm"
SEED = 20261207
CLUSTERS = 1000
NOISE = 0.6  # the norm of a vector's noise against its unit centre
K = 10
# (label, ef_search, iterative_scan, max_scan_tuples, exact_below): exact_below 0 makes every
# search walk the HNSW indexes; above a user's vectors (10 000 here), every search is exact.
SETTINGS = [
    ("exact (exact_below 50000, the default)", 40, "relaxed_order", 20000, 50000),
    ("HNSW ef_search 40, iterative off", 40, "off", 20000, 0),
    ("HNSW ef_search 40, relaxed_order", 40, "relaxed_order", 20000, 0),
    ("HNSW ef_search 100, relaxed_order", 100, "relaxed_order", 20000, 0),
    ("HNSW ef_search 40, strict_order", 40, "strict_order", 20000, 0),
]


def centres(dims: int) -> np.ndarray:
    c = np.random.default_rng([SEED, 0]).standard_normal((CLUSTERS, dims), dtype=np.float32)
    unit: np.ndarray = c / np.linalg.norm(c, axis=1, keepdims=True)
    return unit


def draw(rng: np.random.Generator, cen: np.ndarray, n: int) -> np.ndarray:
    """n clustered unit vectors."""
    dims = cen.shape[1]
    picks = rng.integers(0, CLUSTERS, n)
    noise = rng.standard_normal((n, dims), dtype=np.float32) * (NOISE / np.sqrt(dims))
    v = cen[picks] + noise
    unit: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


def user_vectors(u: int, n: int, cen: np.ndarray) -> np.ndarray:
    return draw(np.random.default_rng([SEED, 1, u]), cen, n)


def user_queries(u: int, n: int, cen: np.ndarray) -> np.ndarray:
    return draw(np.random.default_rng([SEED, 2, u]), cen, n)


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "rows": args.rows,
        "users": args.users,
        "dims": args.dims,
        "months": args.months,
        "seed": SEED,
        "clusters": CLUSTERS,
        "noise": NOISE,
    }


def built(dsn: str, params: dict[str, Any]) -> bool:
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT params FROM public.bench_vectors_meta").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == params


def build(settings: Any, args: argparse.Namespace, params: dict[str, Any]) -> str:
    dsn = fresh_database(settings, DB, {ROLE: ["lake_admin"]})
    users = [f"u{u:03d}" for u in range(args.users)]
    per_user = args.rows // args.users
    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute(
            'SELECT lake.create_dataset(%s, \'{"type": "object"}\', \'{"pii_scan": false}\')',
            [DATASET],
        )
        for user in users:
            su.execute("SELECT lake.create_user(%s)", [user])
        t0 = time.monotonic()
        # Superuser: explicit owners; the validation trigger checks every row. Record i of user
        # u is the i-th in id order: its vector is the user's i-th draw.
        su.execute(
            f"""
            INSERT INTO user_data.{DATASET} (user_id, ts, doc)
            SELECT 'u' || lpad(u::text, 3, '0'), t,
                   jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                      'n', i, 'kind', CASE WHEN i %% 2 = 0 THEN 'a' ELSE 'b' END)
              FROM generate_series(0, %(users)s - 1) AS u,
                   generate_series(0, %(per)s - 1) AS i,
                   LATERAL (SELECT w.start + (now() - w.start - interval '2 minutes')
                                             * (i::float8 / %(per)s) + interval '1 minute' AS t
                              FROM (SELECT date_trunc('month', now())
                                           - make_interval(months => %(m)s - 1) AS start) AS w
                           ) AS x
             ORDER BY u, i
            """,
            {"users": args.users, "per": per_user, "m": args.months},
        )
        print(f"records: {args.rows:,} in {time.monotonic() - t0:.0f} s")
        su.execute(
            "SELECT lake.declare_embeddings(%s, %s, %s, 'cosine')", [DATASET, MODEL, args.dims]
        )
        # A bulk load builds the index afterwards: drop the (empty) HNSW index for the load.
        index = su.execute(
            "SELECT indexrelid::regclass::text FROM pg_index"
            " WHERE indrelid = %s::regclass AND indpred IS NOT NULL",
            [f"user_data.{DATASET}__embeddings"],
        ).fetchone()
        assert index is not None
        su.execute(f"DROP INDEX {index[0]}")

    cen = centres(args.dims)
    app = psycopg.conninfo.make_conninfo(dsn, user=ROLE)
    t0 = time.monotonic()
    with Lake(app) as lake:
        for u, user in enumerate(users):
            lake.act_as(user)
            ids = [
                r["id"]
                for r in lake.conn.execute(
                    f"SELECT id FROM user_data.{DATASET} ORDER BY id"  # RLS: the user's own
                ).fetchall()
            ]
            lake.conn.commit()
            vecs = user_vectors(u, len(ids), cen)
            lake.put_embeddings(DATASET, MODEL, zip(ids, vecs, strict=True))
            if u % 10 == 9:
                print(f"  vectors of {u + 1} users in {time.monotonic() - t0:.0f} s", flush=True)
    load_s = time.monotonic() - t0
    print(
        f"vectors: {args.rows:,} by Lake.put_embeddings in {load_s:.0f} s"
        f" ({args.rows / load_s:,.0f} vectors/s)"
    )

    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute("SET maintenance_work_mem = '2GB'")
        su.execute("SET max_parallel_maintenance_workers = 1")
        t0 = time.monotonic()
        su.execute("SELECT lake_internal._embedding_index(%s, %s)", [DATASET, MODEL])
        build_s = time.monotonic() - t0
        print(
            f"HNSW (m 16, ef_construction 64), {args.months} monthly partitions:"
            f" built in {build_s:.0f} s"
        )
        su.execute(f"VACUUM ANALYZE user_data.{DATASET}, user_data.{DATASET}__embeddings")
        su.execute(
            "CREATE TABLE public.bench_vectors_meta (params jsonb, load_s float8, build_s float8)"
        )
        su.execute(
            "INSERT INTO public.bench_vectors_meta VALUES (%s, %s, %s)",
            [json.dumps(params), load_s, build_s],
        )
    return dsn


def exact_top(vecs: np.ndarray, ids: list[int], q: np.ndarray) -> set[int]:
    d = 1.0 - vecs @ q  # unit vectors: cosine distance
    return {ids[i] for i in np.argpartition(d, K)[:K]}


def measure(dsn: str, args: argparse.Namespace) -> None:
    cen = centres(args.dims)
    app = psycopg.conninfo.make_conninfo(dsn, user=ROLE)
    users = [f"u{u:03d}" for u in range(args.users)]
    truth: list[tuple[str, np.ndarray, set[int]]] = []
    with Lake(app) as lake:
        for u, user in enumerate(users):
            lake.act_as(user)
            ids = [
                int(r["id"])
                for r in lake.conn.execute(f"SELECT id FROM user_data.{DATASET} ORDER BY id")
            ]
            lake.conn.commit()
            vecs = user_vectors(u, len(ids), cen)
            for q in user_queries(u, args.queries, cen):
                truth.append((user, q, exact_top(vecs, ids, q)))
        print(
            f"{len(truth)} searches a setting ({args.queries} for each of {args.users} users),"
            f" k = {K}; exact answers from numpy"
        )

        def run(search: Any) -> tuple[float, int, float, float]:
            recalls, lat, short = [], [], 0
            current = None
            for user, q, top in truth:
                if user != current:
                    lake.act_as(user)
                    current = user
                t0 = time.perf_counter()
                got = search(q)
                lat.append((time.perf_counter() - t0) * 1000)
                short += len(got) < K
                recalls.append(len(set(got) & top) / K)
            lat.sort()
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            return statistics.fmean(recalls), short, statistics.median(lat), p99

        def similar(q: np.ndarray) -> list[int]:
            return [int(r["id"]) for r in lake.similar(DATASET, q, K, model=MODEL)]

        print("warming the caches (one untimed pass)…", flush=True)
        lake.declare_embeddings(DATASET, MODEL, args.dims, exact_below=50000)
        run(similar)
        print(f"{'setting':40} {'recall@10':>9} {'short':>6} {'p50 ms':>8} {'p99 ms':>8}")
        for label, ef, mode, max_scan, exact_below in SETTINGS:
            lake.declare_embeddings(
                DATASET,
                MODEL,
                args.dims,
                ef_search=ef,
                iterative_scan=mode,
                max_scan_tuples=max_scan,
                exact_below=exact_below,
            )
            recall, short, p50, p99 = run(similar)
            print(f"{label:40} {recall:9.3f} {short:6d} {p50:8.1f} {p99:8.1f}", flush=True)
        lake.declare_embeddings(DATASET, MODEL, args.dims, exact_below=50000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--months", type=int, default=4)
    ap.add_argument("--queries", type=int, default=5, help="searches per user and setting")
    ap.add_argument("--rebuild", action="store_true", help="build the database again")
    ap.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = ap.parse_args()
    settings = lake_settings()
    params = params_of(args)
    dsn = settings.dsn(DB)
    print("\n".join(machine_facts(settings.dsn())))
    if args.rebuild or not built(dsn, params):
        print(f"building {DB}: {json.dumps(params)}", flush=True)
        dsn = build(settings, args, params)
    else:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT load_s, build_s FROM public.bench_vectors_meta").fetchone()
        print(
            f"reusing {DB} ({json.dumps(params)}; built before: vectors loaded in"
            f" {row[0] if row else 0:.0f} s, HNSW built in {row[1] if row else 0:.0f} s);"
            " --rebuild makes it again"
        )
    measure(dsn, args)
    if args.drop:
        drop_database(settings, DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
