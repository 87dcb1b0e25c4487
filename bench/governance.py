"""Governance benchmarks, each against a baseline measured in the same run.

    .venv/bin/python bench/governance.py [--users 50] [--rows-per-user 10000] [--queries 500]
                                         [--update-rows 5000] [--rounds 10] [--keep]

Creates a fresh migrated database on the lake's server with one dataset of --users x
--rows-per-user points over 300 days, a lake user and an API key for each, and then measures:

  rls    a per-user range query (one user's points in a 7-day range, counted through the
         (user_id, ts) index) by an application login role (lake_app, no BYPASSRLS) that
         authenticated with the user's key, so row-level security adds the user filter; against
         the same query with the policy's filter, user_id = (SELECT lake.current_user_id()),
         written by hand and run with the same rights and the same key but BYPASSRLS (a role
         made for the run and dropped after it); and, to show what the identity itself costs,
         with a constant user id. All in one backend, switching roles with SET ROLE.
         Timed inside the server (a PL/pgSQL loop of --queries queries a round, --rounds
         rounds each way, in rotating order): client round trips here jitter by more than the
         differences. Goal: RLS at most 5 % over the policy's filter written by hand.
  audit  an UPDATE of --update-rows points of one user by the same application role, with the
         audit triggers on (every old and new row into lake.audit_log, hash-chained) against
         the same UPDATE with them disabled; --rounds rounds each, alternating. Goal: the
         audited UPDATE at least half as fast as the unaudited one.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts
from psycopg.conninfo import make_conninfo

APP_ROLE = "lake_bench_app"
# The baseline for the RLS figure: the same rights as APP_ROLE, but BYPASSRLS. Made for the run
# and dropped after it (not named lake_*: no lake role may bypass RLS).
BASELINE_ROLE = "bench_rls_baseline"
DATASET = "points"
SPAN_DAYS = 300


def prepare(dsn: str, users: int, per_user: int) -> dict[str, str]:
    """The dataset, its rows, and an API key per user (returned by user id)."""
    keys: dict[str, str] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'SELECT lake.create_dataset(%s, \'{"type": "object", "required": ["ts"]}\')',
            [DATASET],
        )
        for u in range(users):
            user = f"user{u:03d}"
            conn.execute("SELECT lake.create_user(%s)", [user])
            row = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [user]).fetchone()
            assert row is not None
            keys[user] = str(row[0])
        # Superuser: no RLS, explicit owners; the validation trigger still checks every row.
        conn.execute(
            """
            INSERT INTO user_data.points (user_id, ts, doc)
            SELECT format('user%%s', lpad((i %% %(users)s)::text, 3, '0')), t,
                   jsonb_build_object('ts', to_char(t AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                      'lat', 52 + random(), 'lon', 13 + random(), 'n', 0)
              FROM generate_series(1, %(total)s) AS i,
                   LATERAL (SELECT now() - interval '1 hour'
                                   - (%(span)s * interval '1 day') * i / %(total)s AS t) AS x
            """,
            {"users": users, "total": users * per_user, "span": SPAN_DAYS - 1},
        )
        conn.execute("VACUUM ANALYZE user_data.points")
    return keys


def app_session(dsn: str, key: str, role: str = APP_ROLE) -> psycopg.Connection[tuple[object, ...]]:
    """A session of `role` (never a superuser; BYPASSRLS only for the baseline role) that
    authenticated with `key`."""
    conn = psycopg.connect(make_conninfo(dsn, user=role), autocommit=True)
    conn.execute("SELECT lake.authenticate(%s, 'session')", [key])
    row = conn.execute(
        "SELECT current_user, r.rolsuper, r.rolbypassrls, lake.current_user_id()"
        " FROM pg_roles r WHERE r.rolname = current_user"
    ).fetchone()
    assert row is not None and row[0] == role and not row[1] and row[3], row
    assert row[2] == (role == BASELINE_ROLE), row
    return conn


# Server-side loops, so that client and network jitter (larger than the differences measured
# here) stay out: each runs one query `k` times over 7-day ranges spread over the data and
# returns the microseconds per query. `filter` is the user filter written into the query:
#   rls      none (row-level security adds it)
#   same     user_id = (SELECT lake.current_user_id()), the policy's own filter, by hand
#   literal  user_id = the user id as a constant (no identity looked up at all)
# Created in the scratch database only.
LOOPS = """
CREATE FUNCTION public.bench_range_loop(k int, filter text, who text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    n  bigint;
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..k LOOP
        IF filter = 'rls' THEN
            SELECT count(*) INTO n FROM user_data.points
             WHERE ts >= now() - make_interval(days => 8 + (i * 7919) % 290)
               AND ts < now() - make_interval(days => 1 + (i * 7919) % 290);
        ELSIF filter = 'same' THEN
            SELECT count(*) INTO n FROM user_data.points
             WHERE user_id = (SELECT lake.current_user_id())
               AND ts >= now() - make_interval(days => 8 + (i * 7919) % 290)
               AND ts < now() - make_interval(days => 1 + (i * 7919) % 290);
        ELSE
            SELECT count(*) INTO n FROM user_data.points
             WHERE user_id = who
               AND ts >= now() - make_interval(days => 8 + (i * 7919) % 290)
               AND ts < now() - make_interval(days => 1 + (i * 7919) % 290);
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / k;
END
$$;
CREATE FUNCTION public.bench_range_total(who text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT sum((SELECT count(*) FROM user_data.points
                 WHERE (who IS NULL OR user_id = who)
                   AND ts >= now() - make_interval(days => 8 + (i * 7919) % 290)
                   AND ts < now() - make_interval(days => 1 + (i * 7919) % 290)))::bigint
      FROM generate_series(1, 100) AS i
$$;
GRANT EXECUTE ON FUNCTION public.bench_range_loop(int, text, text),
                          public.bench_range_total(text) TO lake_app;
"""


def bench_rls(dsn: str, keys: dict[str, str], queries: int, rounds: int) -> dict[str, float]:
    """Median microseconds per query over the rounds, by filter (see LOOPS). Everything runs
    in one backend, switching between the application role and the baseline role with SET ROLE:
    on this VM two backends can differ in speed by more than the difference measured."""
    user = sorted(keys)[0]
    times: dict[str, list[float]] = {"rls": [], "same": [], "literal": []}
    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute(LOOPS)
        su.execute("SELECT lake.authenticate(%s, 'session')", [keys[user]])

        def run(role: str, how: str, k: int) -> float:
            su.execute(f"SET ROLE {role}")
            try:
                got = su.execute(
                    "SELECT current_setting('is_superuser'), r.rolbypassrls,"
                    " public.bench_range_loop(%s, %s, %s)"
                    " FROM pg_roles r WHERE r.rolname = current_user",
                    [k, how, user],
                ).fetchone()
            finally:
                su.execute("RESET ROLE")
            assert got is not None and got[0] == "off", got  # never as the superuser
            assert got[1] is (role == BASELINE_ROLE), got  # RLS applies to the app role only
            return float(str(got[2]))

        # The same rows every way: RLS adds exactly the user filter written by hand.
        su.execute(f"SET ROLE {APP_ROLE}")
        a = su.execute("SELECT public.bench_range_total(NULL)").fetchone()
        su.execute(f"SET ROLE {BASELINE_ROLE}")
        b = su.execute("SELECT public.bench_range_total(%s)", [user]).fetchone()
        su.execute("RESET ROLE")
        assert a == b and a is not None and int(str(a[0])) > 0, (a, b)
        order = [(APP_ROLE, "rls"), (BASELINE_ROLE, "same"), (BASELINE_ROLE, "literal")]
        for n in range(rounds + 1):  # a warm-up round, then rotate the order
            for role, how in order[n % 3 :] + order[: n % 3]:
                value = run(role, how, queries)
                if n >= 1:
                    times[how].append(value)
    return {how: statistics.median(t) for how, t in times.items()}


def bench_audit(
    dsn: str, keys: dict[str, str], update_rows: int, rounds: int
) -> tuple[list[float], list[float]]:
    """Rows/s of the UPDATE per round: (audited, unaudited)."""
    user = sorted(keys)[-1]
    audited: list[float] = []
    plain: list[float] = []
    with app_session(dsn, keys[user]) as app, psycopg.connect(dsn, autocommit=True) as su:
        ids = [
            r[0]
            for r in app.execute(
                "SELECT id FROM user_data.points ORDER BY ts DESC LIMIT %s", [update_rows]
            )
        ]
        assert len(ids) == update_rows, f"user {user} has only {len(ids)} rows"
        stmt = (
            "UPDATE user_data.points SET doc = jsonb_set(doc, '{n}', to_jsonb(%s::int))"
            " WHERE id = ANY(%s)"
        )
        for n in range(1, 2 * rounds + 1):
            on = n % 2 == 1
            su.execute(
                f"ALTER TABLE user_data.points {'ENABLE' if on else 'DISABLE'} TRIGGER audit_update"
            )
            su.execute("VACUUM user_data.points")
            before = su.execute("SELECT last_id FROM lake_internal.audit_head").fetchone()
            t = time.perf_counter()
            changed = app.execute(stmt, [n, ids]).rowcount
            seconds = time.perf_counter() - t
            after = su.execute("SELECT last_id FROM lake_internal.audit_head").fetchone()
            assert changed == update_rows, changed
            assert before is not None and after is not None
            entries = int(after[0]) - int(before[0])
            assert entries == ((update_rows + 999) // 1000 if on else 0), entries
            (audited if on else plain).append(update_rows / seconds)
        su.execute("ALTER TABLE user_data.points ENABLE TRIGGER audit_update")
        verified = su.execute("SELECT ok, problem FROM lake.verify_audit_chain()").fetchone()
        assert verified is not None and verified[0] is True, verified
    return audited, plain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="lake users (50)")
    parser.add_argument("--rows-per-user", type=int, default=10_000, help="points each (10 000)")
    parser.add_argument("--queries", type=int, default=500, help="range queries a round (500)")
    parser.add_argument("--update-rows", type=int, default=5000, help="rows an UPDATE (5000)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds each way (10)")
    parser.add_argument("--database", default="lake_bench_gov", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if min(args.users, args.rows_per_user, args.queries, args.update_rows, args.rounds) < 1:
        parser.error("every count must be positive")
    if args.update_rows > args.rows_per_user:
        parser.error("--update-rows cannot exceed --rows-per-user")

    settings = lake_settings()
    print("command: " + shlex.join([".venv/bin/python", "bench/governance.py", *sys.argv[1:]]))
    dsn = fresh_database(settings, args.database, {APP_ROLE: ["lake_app"]})
    with psycopg.connect(settings.dsn("postgres"), autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {BASELINE_ROLE}")
        admin.execute(f"CREATE ROLE {BASELINE_ROLE} LOGIN NOSUPERUSER BYPASSRLS IN ROLE lake_app")
    try:
        for fact in machine_facts(dsn):
            print(fact)
        total = args.users * args.rows_per_user
        print(f"data:    {total:,} points of {args.users} users over {SPAN_DAYS} days")
        keys = prepare(dsn, args.users, args.rows_per_user)

        t = bench_rls(dsn, keys, args.queries, args.rounds)
        print()
        print(
            f"rls:    per-user 7-day range count through the (user_id, ts) index, in the server, "
            f"median of {args.rounds} rounds of {args.queries} queries:\n"
            f"        under RLS {t['rls']:.1f} us; the policy's filter written by hand, BYPASSRLS "
            f"{t['same']:.1f} us: overhead {100 * (t['rls'] / t['same'] - 1):+.1f} % "
            f"(goal: at most +5 %);\n"
            f"        a constant user id instead {t['literal']:.1f} us: the identity lookup "
            f"costs {t['same'] - t['literal']:.1f} us a query"
        )
        audited, plain = bench_audit(dsn, keys, args.update_rows, args.rounds)
        a, p = statistics.median(audited), statistics.median(plain)
        print(
            f"audit:  UPDATE of {args.update_rows:,} rows, median of {args.rounds}: audited "
            f"{a:,.0f} rows/s, unaudited {p:,.0f} rows/s, ratio {a / p:.2f} (goal: at least 0.5)"
        )
    finally:
        if not args.keep:
            drop_database(settings, args.database)
        with psycopg.connect(settings.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {BASELINE_ROLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
