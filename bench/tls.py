"""Transport-security benchmark: ingest over TLS 1.3 as a ratio to the same ingest without TLS,
and the time to set up a connection with TLS and with mTLS.

    .venv/bin/python bench/tls.py [--records 1000000] [--runs 2] [--connects 50] [--keep]

The baseline without TLS is the local socket: pg_hba.conf refuses plaintext TCP (`hostnossl …
reject`), and the bench does not open that hole even for a moment on a cluster that may hold real
data. The socket also saves the TCP loopback's own cost, so the ratio is a lower bound of what TLS
costs against plaintext TCP.

It creates a fresh database with one dataset (the demo's location schema) and a login of lake_app
with a password (TCP logins are SCRAM over TLS). Each round ingests the same N records (1 % invalid)
with Lake.ingest in one session (jobs=1, so both sides do the same work in the same order), first
over the socket, then over TCP with sslmode=verify-full, the table emptied and a CHECKPOINT before
each. Prints records/s of both, the ratio tls/socket per round and its median.

Then the connection set-up, median of --connects, each a new connection that runs SELECT 1 and
closes: over the socket, TLS (server verified against the lake's CA, password), mTLS (the same
with a service's client certificate, which the server verifies in the handshake), and mTLS with
lake.authenticate_cert() (the identity established).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from common import drop_database, fresh_database, lake_settings, machine_facts
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lake_client.certs import save_pair
from lake_client.client import Lake
from lake_client.config import Settings
from lake_client.demo import SCHEMA

ROLE = "lake_bench_tls"
PASSWORD = "bench-tls-password"
LAKE_USER = "bench-user"
SERVICE = "bench-service"


def prepare(settings: Settings, name: str, folder: Path) -> tuple[str, str, dict[str, str], str]:
    """The database (its socket DSN), the TCP DSN of the bench's login, a service's certificate
    files (sslcert, sslkey), and the same service's API key (for the socket)."""
    dsn = fresh_database(settings, name, {ROLE: ["lake_app", "lake_service"]})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD))
        )
        conn.execute("SELECT lake.create_dataset('places', %s)", [json.dumps(SCHEMA)])
        conn.execute("SELECT lake.create_user(%s)", [LAKE_USER])
        conn.execute("SELECT lake.create_user(%s, NULL, 'service')", [SERVICE])
        row = conn.execute(
            "SELECT certificate, private_key FROM lake.issue_service_cert(%s)", [SERVICE]
        ).fetchone()
        api_key = conn.execute("SELECT api_key FROM lake.create_api_key(%s)", [SERVICE]).fetchone()
    assert row is not None and api_key is not None
    cert, key = folder / "service.crt", folder / "service.key"
    save_pair(cert, key, str(row[0]), str(row[1]))
    tcp = settings.tcp_dsn(name, user=ROLE, password=PASSWORD)
    return dsn, tcp, {"sslcert": str(cert), "sslkey": str(key)}, str(api_key[0])


def lines(n: int) -> list[bytes]:
    """n location records over the last 300 days, one in a hundred with a latitude beyond 90."""
    start = datetime.now(UTC) - timedelta(days=300)
    step = timedelta(days=300) / n
    out = []
    for i in range(n):
        ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%SZ")
        lat = 95.0 if i % 100 == 99 else (i % 1800) / 20 - 45
        out.append(json.dumps({"ts": ts, "lat": lat, "lon": (i % 3600) / 10 - 180}).encode())
    return out


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE user_data.places, inbox.places, lake.quarantine, lake.batches")
        conn.execute("VACUUM ANALYZE lake.batches, lake.quarantine")
        conn.execute("CHECKPOINT")


def ingest(dsn: str, recs: list[bytes], batch_size: int, api_key: str | None) -> float:
    """Seconds to ingest ``recs`` as the service acting for the lake user: identified by its
    API key (over the socket) or by its client certificate (over TLS)."""
    with Lake(dsn, application_name="lake-bench-tls") as lake:
        if api_key is None:
            lake.authenticate_cert()
        else:
            lake.authenticate(api_key)
        lake.act_as(LAKE_USER, "session")
        started = time.perf_counter()
        summary = lake.ingest("places", recs, batch_size=batch_size, jobs=1, origin="bench")
        took = time.perf_counter() - started
    assert summary.received == len(recs) == summary.accepted + summary.quarantined, summary
    return took


def connect_ms(dsn: str, n: int, authenticate: bool = False) -> float:
    """Median milliseconds to connect, run a statement and close."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT lake.authenticate_cert()" if authenticate else "SELECT 1")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="(1 000 000)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of socket + TLS (2)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="(10 000)")
    parser.add_argument("--connects", type=int, default=50, help="connections per kind (50)")
    parser.add_argument("--database", default="lake_bench_tls")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if min(args.records, args.runs, args.batch_size, args.connects) < 1:
        parser.error("--records, --runs, --batch-size and --connects must be positive")
    settings = lake_settings()
    if not settings.embedded:
        parser.error("needs the embedded cluster (its CA and TLS settings)")
    folder = Path(tempfile.mkdtemp(prefix="lake-bench-tls-"))
    socket_dsn, tcp_dsn, cert_files, api_key = prepare(settings, args.database, folder)
    # The bench login over the socket: the same role, the same work, no TLS.
    plain_dsn = make_conninfo(socket_dsn, user=ROLE)
    mtls_dsn = make_conninfo(tcp_dsn, **cert_files)
    recs = lines(args.records)
    n = args.records
    ratios = []
    try:
        for round_ in range(1, args.runs + 1):
            reset(socket_dsn)
            plain_s = ingest(plain_dsn, recs, args.batch_size, api_key)
            reset(socket_dsn)
            tls_s = ingest(mtls_dsn, recs, args.batch_size, None)
            ratio = plain_s / tls_s
            ratios.append(ratio)
            print(
                f"round {round_}: socket {n / plain_s:,.0f} records/s, TLS 1.3 (mTLS)"
                f" {n / tls_s:,.0f} records/s, ratio {ratio:.2f}",
                flush=True,
            )
        print(f"ratio TLS/socket, median of {len(ratios)}: {statistics.median(ratios):.2f}")
        with psycopg.connect(tcp_dsn) as conn:
            got = conn.execute(
                "SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        print(f"TLS: {got}")
        k = args.connects
        print(f"connection set-up, median of {k} (connect, one statement, close):")
        print(f"  socket (no TLS)            {connect_ms(plain_dsn, k):7.2f} ms")
        print(f"  TLS 1.3, password          {connect_ms(tcp_dsn, k):7.2f} ms")
        print(f"  mTLS (client certificate)  {connect_ms(mtls_dsn, k):7.2f} ms")
        print(f"  mTLS + authenticate_cert() {connect_ms(mtls_dsn, k, authenticate=True):7.2f} ms")
    finally:
        if not args.keep:
            drop_database(settings, str(conninfo_to_dict(socket_dsn)["dbname"]))
    print("command: " + shlex.join(["bench/tls.py", *(argv or sys.argv[1:])]))
    for line in machine_facts(settings.dsn("postgres")):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
