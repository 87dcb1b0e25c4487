"""The gRPC service's identity from the caller's service certificate (issue 17, mTLS): `lake grpc
--client-ca` verifies the certificate in its handshake and the database names the service
(lake.authenticate_peer_cert, for members of lake_door only) with the same checks as for a
certificate PostgreSQL verified itself. Through real TLS channels against a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lake_client import errors
from lake_client.certs import TlsFiles, rules
from lake_client.grpc_client import GrpcLake
from lake_client.grpc_server import APPLICATION_NAME, make_server
from lake_client.local.processes import Paths
from lake_client.local.tls import door_files
from tests.conftest import ADMIN_ROLE, APP_ROLE, SERVICE_ROLE, Settings, seal
from tests.test_grpc import new_key, records
from tests.tls_probe import Pair, write_pair
from tests.tls_probe import issue_service_cert as issue

Conn = psycopg.Connection[tuple[object, ...]]
DOOR_ROLE = "lake_test_door"  # the login of a door that verifies client certificates
DOOR_ADMIN_ROLE = "lake_test_door_admin"  # its administrator login (--admin-dsn)


@pytest.fixture(scope="module")
def door_role(admin_conn: Conn, template_db: str) -> str:
    """The logins of `lake grpc --client-ca`: lake_service and lake_door (--dsn), lake_admin
    and lake_door (--admin-dsn)."""
    for role, group in ((DOOR_ROLE, "lake_service"), (DOOR_ADMIN_ROLE, "lake_admin")):
        admin_conn.execute(
            sql.SQL(
                "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {r}) THEN "
                "CREATE ROLE {i} LOGIN; END IF; END$$"
            ).format(r=sql.Literal(role), i=sql.Identifier(role))
        )
        admin_conn.execute(
            sql.SQL("GRANT {}, lake_door TO {}").format(sql.Identifier(group), sql.Identifier(role))
        )
    return DOOR_ROLE


@pytest.fixture
def people(conn: Conn, location_dataset: str) -> None:
    """alice and bob (users), gw (a service)."""
    conn.execute("SELECT lake.create_user('alice')")
    conn.execute("SELECT lake.create_user('bob')")
    conn.execute("SELECT lake.create_user('gw', 'Gateway', 'service')")


Serve = Callable[..., str]


@pytest.fixture
def serve(db: str, settings: Settings, door_role: str) -> Iterator[Serve]:
    """`lake grpc --client-ca <the lake's CA>` on a free port, logged in as the door login
    (or `user`); returns its target. Stopped after the test."""
    if not settings.embedded:
        pytest.skip("the lake's CA lives with the embedded cluster")
    running: list[Any] = []
    tls = door_files(settings.home, "grpc", print)

    def start(user: str = door_role, **options: Any) -> str:
        server, port, service = make_server(
            make_conninfo(db, user=user),
            tls=tls,
            client_ca=settings.ca_file,
            admin_dsn=make_conninfo(db, user=DOOR_ADMIN_ROLE),
            admins=frozenset({"ops"}),
            redis_url=settings.redis_url(),
            **options,
        )
        running.append((server, service))
        return f"127.0.0.1:{port}"

    yield start
    for server, service in running:
        server.stop(None).wait()
        service.close()


def by_cert(target: str, pair: Pair, act_for: str | None = None) -> GrpcLake:
    return GrpcLake(target, None, client_cert=pair, act_for=act_for)


def users_seen(lake: GrpcLake) -> tuple[set[object], int]:
    rows = list(lake.query("location_history"))
    return {r["user_id"] for r in rows}, len(rows)


def audit(conn: Conn, action: str) -> list[tuple[object, ...]]:
    seal(conn)
    return conn.execute(
        "SELECT object, detail FROM lake.audit_log WHERE action = %s ORDER BY id", [action]
    ).fetchall()


def test_a_service_certificate_is_the_calls_identity(
    conn: Conn, people: None, serve: Serve, tmp_path: Path
) -> None:
    target = serve()
    serial, gw = issue(conn, tmp_path)
    for user, n in (("alice", 6), ("bob", 4)):
        with by_cert(target, gw, act_for=user) as lake:
            assert lake.ingest("location_history", records(n, bad_every=0)).accepted == n
    for user, n in (("alice", 6), ("bob", 4)):
        with by_cert(target, gw, act_for=user) as lake:
            assert users_seen(lake) == ({user}, n)
    stored = conn.execute(
        "SELECT user_id, count(*) FROM user_data.location_history GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert stored == [("alice", 6), ("bob", 4)]
    # The service alone is nobody's: no user, an error that says so.
    with by_cert(target, gw) as lake, pytest.raises(errors.LakeError):
        list(lake.changes())
    # The same rules as act_as: a service acts for enabled users of kind user only.
    with by_cert(target, gw, act_for="gw") as lake, pytest.raises(errors.IdentityError):
        list(lake.query("location_history"))
    # One call, one identity: a certificate and an API key together are refused.
    key = new_key(conn, "alice")[1]
    with (
        GrpcLake(target, key, client_cert=gw) as both,
        pytest.raises(errors.AuthenticationFailed, match="one identity"),
    ):
        list(both.query("location_history"))
    # Audited as the certificate's service, with the door that vouched for the handshake.
    successes = [d for _, d in audit(conn, "auth.success") if isinstance(d, dict)]
    assert successes and all(
        d["certificate"] == str(serial) and d["door"] == DOOR_ROLE and d["scope"] == "transaction"
        for d in successes
    )


def test_revoked_expired_unknown_and_disabled_are_refused(
    conn: Conn, people: None, serve: Serve, settings: Settings, tmp_path: Path
) -> None:
    target = serve()
    with by_cert(target, issue(conn, tmp_path)[1], act_for="alice") as lake:
        lake.ingest("location_history", records(3, bad_every=0))

    def refusal(pair: Pair) -> str:
        with (
            by_cert(target, pair, act_for="alice") as lake,
            pytest.raises(errors.AuthenticationFailed) as err,
        ):
            list(lake.query("location_history"))
        return str(err.value.args[0])

    revoked_serial, revoked = issue(conn, tmp_path)
    with by_cert(target, revoked, act_for="alice") as lake:
        assert users_seen(lake) == ({"alice"}, 3)
    conn.execute("SELECT lake.revoke_service_cert(%s)", [str(revoked_serial)])
    assert refusal(revoked) == "authentication failed: revoked certificate"
    # Valid for TLS, but the lake's record says it expired.
    expired_serial, expired = issue(conn, tmp_path)
    conn.execute(
        "UPDATE lake.service_certs SET not_before = now() - interval '8 days', "
        "not_after = now() - interval '1 day' WHERE serial = %s",
        [expired_serial],
    )
    assert refusal(expired) == "authentication failed: expired certificate"
    # Signed by the lake's CA (the handshake passes) but never recorded by the lake.
    certs = rules()
    ca_files = TlsFiles(Paths(settings.home).tls)
    ca = certs.Pair(ca_files.ca_cert.read_bytes(), ca_files.ca_key.read_bytes())
    stray = certs.issue(ca, "gw", days=certs.SERVICE_DAYS, client=True)
    stray_pair = write_pair(tmp_path, "stray", stray.cert_pem, stray.key_pem)
    assert refusal(stray_pair) == "authentication failed: unknown certificate"
    # A disabled service's certificate, until it is enabled again.
    _, good = issue(conn, tmp_path)
    conn.execute("SELECT lake.set_user_enabled('gw', false)")
    assert refusal(good) == "authentication failed: disabled service"
    conn.execute("SELECT lake.set_user_enabled('gw', true)")
    with by_cert(target, good, act_for="alice") as lake:
        assert users_seen(lake) == ({"alice"}, 3)
    failures = audit(conn, "auth.failure")
    assert [(o, d["reason"], d["door"]) for o, d in failures] == [  # type: ignore[index]
        (f"cert:{revoked_serial}", "revoked certificate", DOOR_ROLE),
        (f"cert:{expired_serial}", "expired certificate", DOOR_ROLE),
        (f"cert:{certs.info(stray.cert_pem).serial}", "unknown certificate", DOOR_ROLE),
        (failures[3][0], "disabled service", DOOR_ROLE),
    ]


def test_only_a_door_may_vouch_for_a_certificate(
    conn: Conn, people: None, serve: Serve, as_role: Callable[[str], Conn], tmp_path: Path
) -> None:
    serial, gw = issue(conn, tmp_path)
    row = conn.execute("SELECT issuer FROM lake.service_certs WHERE serial = %s", [serial])
    issuer = row.fetchone()
    assert issuer is not None
    # An application, a gateway's login without lake_door, an administrator: all refused, so
    # none can claim a certificate it does not hold.
    for role in (APP_ROLE, SERVICE_ROLE, ADMIN_ROLE):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(role).execute("SELECT lake.authenticate_peer_cert(%s, %s)", [serial, issuer[0]])
    # A server that logs in without lake_door cannot turn certificates into identities.
    target = serve(user=SERVICE_ROLE)
    with by_cert(target, gw, act_for="alice") as lake, pytest.raises(errors.LakeError) as err:
        list(lake.query("location_history"))
    assert err.value.sqlstate == "42501"


def test_an_administrator_by_certificate(
    conn: Conn, people: None, serve: Serve, tmp_path: Path
) -> None:
    target = serve()
    conn.execute("SELECT lake.create_user('ops', 'Operations', 'service')")
    _, ops = issue(conn, tmp_path, "ops")
    _, gw = issue(conn, tmp_path)
    schema = {"type": "object", "required": ["ts", "v"], "properties": {"v": {"type": "number"}}}
    with by_cert(target, gw) as lake, pytest.raises(errors.IdentityError, match="administrator"):
        lake.create_dataset("steps", schema)
    with by_cert(target, ops) as lake:
        assert lake.create_dataset("steps", schema)["name"] == "steps"
        assert lake.quarantine("steps") == []
    # An administrator acts for nobody through x-lake-user.
    with by_cert(target, ops, act_for="alice") as lake, pytest.raises(errors.IdentityError):
        lake.quarantine("steps")


def test_a_pooled_connection_never_carries_a_certificates_identity(
    conn: Conn, people: None, serve: Serve, settings: Settings, tmp_path: Path
) -> None:
    target = serve(workers=2)
    conn.execute("SELECT lake.create_user('ops', 'Operations', 'service')")
    _, gw = issue(conn, tmp_path)
    _, ops = issue(conn, tmp_path, "ops")
    for user, n in (("alice", 5), ("bob", 3)):
        with by_cert(target, gw, act_for=user) as lake:
            lake.ingest("location_history", records(n, bad_every=0))
    # One after the other on the same two connections: acting for alice, then the service
    # alone (nobody's rows), then a certificate the lake never recorded (refused).
    certs = rules()
    ca_files = TlsFiles(Paths(settings.home).tls)
    ca = certs.Pair(ca_files.ca_cert.read_bytes(), ca_files.ca_key.read_bytes())
    stray = certs.issue(ca, "gw", days=certs.SERVICE_DAYS, client=True)
    stray_pair = write_pair(tmp_path, "stray", stray.cert_pem, stray.key_pem)
    for _ in range(3):
        with by_cert(target, gw, act_for="alice") as lake:
            assert users_seen(lake) == ({"alice"}, 5)
        with by_cert(target, gw) as lake:
            assert users_seen(lake) == (set(), 0)
        with by_cert(target, stray_pair) as lake, pytest.raises(errors.AuthenticationFailed):
            users_seen(lake)
    # Side by side: every call sees its own identity's rows only.
    wrong: list[object] = []
    calls: list[str] = []

    def work(name: str, pair: Pair, act_for: str | None, expect: set[object]) -> None:
        with by_cert(target, pair, act_for=act_for) as lake:
            for _ in range(12):
                try:
                    got = users_seen(lake)[0]
                except errors.LakeError as exc:
                    got = {type(exc).__name__}
                calls.append(name)
                if got != expect:
                    wrong.append((name, got))

    threads = [
        threading.Thread(target=work, args=args)
        for args in (
            ("gw-alice", gw, "alice", {"alice"}),
            ("gw-bob", gw, "bob", {"bob"}),
            ("ops-bob", ops, "bob", {"bob"}),
            ("gw-alone", gw, None, set()),
            ("stray", stray_pair, None, {"AuthenticationFailed"}),
        )
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [] and len(calls) == 60
    # The server's connections hold no identity beyond a call's transaction.
    rows = conn.execute(
        "SELECT count(*) FROM lake_internal.session_identity s JOIN pg_stat_activity a "
        "ON a.pid = s.backend_pid WHERE a.application_name = %s "
        "AND 'session' IN (s.auth_scope, s.act_scope)",
        [APPLICATION_NAME],
    ).fetchone()
    assert rows == (0,)
