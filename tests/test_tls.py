"""PostgreSQL over TLS (issue 16): TLS 1.3 only, the lake's CA, services identified by their
client certificates, revocation, and the renewal of the server's certificate while connections
are open. Against the embedded cluster over TCP, as a service would connect."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from lake_client.certs import TlsFiles, rules
from lake_client.config import Settings
from lake_client.local.processes import Paths
from tests import tls_probe
from tests.conftest import seal
from tests.test_cli import lake as cli

Conn = psycopg.Connection[tuple[object, ...]]
ROLE = "lake_test_tls_service"  # a lake_service login that connects over TCP
PASSWORD = "tls-test-password"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@pytest.fixture(scope="module")
def tls(settings: Settings) -> TlsFiles:
    if not settings.embedded:
        pytest.skip("the lake's CA and certificates live with the embedded cluster")
    return TlsFiles(Paths(settings.home).tls)


@pytest.fixture(scope="module")
def tls_role(admin_conn: Conn, template_db: str) -> str:
    """A login of lake_service with a password (TCP logins need one: SCRAM over TLS)."""
    admin_conn.execute(
        sql.SQL(
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {r}) THEN "
            "CREATE ROLE {i} LOGIN; END IF; END$$"
        ).format(r=sql.Literal(ROLE), i=sql.Identifier(ROLE))
    )
    admin_conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD))
    )
    admin_conn.execute(sql.SQL("GRANT lake_service TO {}").format(sql.Identifier(ROLE)))
    return ROLE


Connect = Callable[..., Conn]


@pytest.fixture
def tcp(settings: Settings, db: str, tls: TlsFiles, tls_role: str) -> Iterator[Connect]:
    """Connections over TCP to the test's database as the TLS service login; keyword arguments
    are libpq parameters (sslcert, sslkey, sslmode, …). Closed after the test."""
    name = str(conninfo_to_dict(db)["dbname"])
    opened: list[Conn] = []

    def connect(**extra: str) -> Conn:
        c = psycopg.connect(
            settings.tcp_dsn(name, user=tls_role, password=PASSWORD, **extra), autocommit=True
        )
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close()


def write_pair(
    folder: Path, name: str, cert_pem: str | bytes, key_pem: str | bytes
) -> dict[str, str]:
    """The certificate and key as files, as libpq takes them (sslcert, sslkey)."""
    return libpq(tls_probe.write_pair(folder, name, cert_pem, key_pem))


def libpq(pair: tls_probe.Pair) -> dict[str, str]:
    return {"sslcert": str(pair[0]), "sslkey": str(pair[1])}


@pytest.fixture
def gateway(conn: Conn) -> None:
    """A service (gw) and a user (alice), as an administrator registers them."""
    conn.execute("SELECT lake.create_user('gw', 'the gateway', 'service')")
    conn.execute("SELECT lake.create_user('alice')")


def issue(
    conn: Conn, folder: Path, service: str = "gw", scopes: tuple[str, ...] = ("read", "write")
) -> tuple[int, dict[str, str]]:
    serial, pair = tls_probe.issue_service_cert(conn, folder, service, scopes)
    return serial, libpq(pair)


def identity(c: Conn) -> tuple[object, ...] | None:
    return c.execute(
        "SELECT user_id, service, principal, key_id, scopes FROM lake.current_identity()"
    ).fetchone()


def server_serial(settings: Settings, tls: TlsFiles) -> int:
    """The serial of the certificate the server presents to a new connection (PostgreSQL's
    SSLRequest, then a TLS 1.3 handshake that verifies it against the lake's CA)."""
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", settings.pg_port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
            der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def audit(conn: Conn, action: str) -> list[tuple[object, ...]]:
    seal(conn)
    return conn.execute(
        "SELECT object, detail FROM lake.audit_log WHERE action = %s ORDER BY id", [action]
    ).fetchall()


def test_tls_1_2_plaintext_and_a_foreign_ca_are_refused(tcp: Connect, tmp_path: Path) -> None:
    ok = tcp()
    assert ok.execute(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone() == (True, "TLSv1.3")
    with pytest.raises(psycopg.OperationalError, match="protocol version"):
        tcp(sslmode="require", ssl_max_protocol_version="TLSv1.2")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        tcp(sslmode="disable")
    other = rules().create_ca("another CA")
    foreign = tmp_path / "other-ca.crt"
    foreign.write_bytes(other.cert_pem)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        tcp(sslrootcert=str(foreign))


def test_a_service_certificate_gives_exactly_its_identity(
    conn: Conn, gateway: None, tcp: Connect, tmp_path: Path
) -> None:
    serial, files = issue(conn, tmp_path, scopes=("read",))
    svc = tcp(**files)
    assert svc.execute("SELECT lake.authenticate_cert()").fetchone() == ("gw",)
    assert identity(svc) == (None, "gw", "gw", f"cert:{serial}", ["read"])
    # Nothing sent in SQL makes it another: a nonce of one's own only loses it, and the
    # machinery is out of reach.
    svc.execute("SET lake.identity_nonce = '00000000-0000-0000-0000-000000000000'")
    assert identity(svc) is None
    assert svc.execute("SELECT lake.authenticate_cert()").fetchone() == ("gw",)
    for forged in (
        "SELECT * FROM lake_internal._handshake_cert()",
        "UPDATE lake_internal.session_identity SET principal = 'alice'",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            svc.execute(forged)
    assert identity(svc) == (None, "gw", "gw", f"cert:{serial}", ["read"])
    # It acts for users as a service with a read-only key would.
    svc.execute("SELECT lake.act_as('alice', 'session')")
    assert identity(svc) == ("alice", "gw", "gw", f"cert:{serial}", ["read"])
    with pytest.raises(psycopg.Error) as err:
        svc.execute("SELECT lake.act_as('nobody')")
    assert err.value.sqlstate == "LK012"
    # Without a certificate, or with one of the lake's CA that the lake never issued: nobody.
    plain = tcp()
    assert plain.execute("SELECT lake.authenticate_cert()").fetchone() == (None,)
    assert identity(plain) is None
    assert [r[1] for r in audit(conn, "auth.failure")] == [{"reason": "no client certificate"}]


def test_a_certificate_the_lake_did_not_record_is_nobody(
    conn: Conn, gateway: None, tcp: Connect, tls: TlsFiles, tmp_path: Path
) -> None:
    certs = rules()
    ca = certs.Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes())
    stray = certs.issue(ca, "gw", days=certs.SERVICE_DAYS, client=True)
    svc = tcp(**write_pair(tmp_path, "stray", stray.cert_pem, stray.key_pem))
    assert svc.execute("SELECT lake.authenticate_cert()").fetchone() == (None,)
    assert identity(svc) is None
    assert [r[1] for r in audit(conn, "auth.failure")] == [{"reason": "unknown certificate"}]


def test_an_expired_service_certificate_is_refused(
    gateway: None, tcp: Connect, tls: TlsFiles, tmp_path: Path
) -> None:
    certs = rules()
    ca = certs.Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes())
    month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    old = certs.issue(ca, "gw", days=certs.SERVICE_DAYS, client=True, now=month_ago)
    with pytest.raises(psycopg.OperationalError, match="expired"):
        tcp(**write_pair(tmp_path, "old", old.cert_pem, old.key_pem))


def test_a_revoked_certificate_ends_open_sessions_and_refuses_new_ones(
    conn: Conn, gateway: None, tcp: Connect, tmp_path: Path
) -> None:
    serial, files = issue(conn, tmp_path)
    _, other = issue(conn, tmp_path)
    svc, bystander = tcp(**files), tcp(**other)
    for c in (svc, bystander):
        c.execute("SELECT lake.authenticate_cert()")
        c.execute("SELECT lake.act_as('alice', 'session')")
    assert conn.execute("SELECT lake.revoke_service_cert(%s)", [str(serial)]).fetchone() == (1,)
    # The open session's next statement has no identity left; the other certificate's has.
    assert identity(svc) is None
    with pytest.raises(psycopg.Error) as err:
        svc.execute("SELECT lake.act_as('alice')")
    assert err.value.sqlstate == "LK012"
    assert identity(bystander) is not None
    # A new connection with it: the handshake passes (the CA signed it), the lake refuses it.
    again = tcp(**files)
    assert again.execute("SELECT lake.authenticate_cert()").fetchone() == (None,)
    assert identity(again) is None
    assert [r[1] for r in audit(conn, "auth.failure")] == [{"reason": "revoked certificate"}]
    assert [r[0] for r in audit(conn, "cert.revoke")] == [str(serial)]
    # Revoking a service revokes the rest of its certificates.
    assert conn.execute("SELECT lake.revoke_service_cert('gw')").fetchone() == (1,)
    assert identity(bystander) is None
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT lake.revoke_service_cert('nobody')")
    assert err.value.sqlstate == "LK012"


def test_a_service_renews_its_own_certificate(
    conn: Conn, gateway: None, tcp: Connect, tmp_path: Path
) -> None:
    serial, files = issue(conn, tmp_path, scopes=("write",))
    svc = tcp(**files)
    row = svc.execute(
        "SELECT serial, service, certificate, private_key FROM lake.renew_service_cert()"
    ).fetchone()
    assert row is not None and row[1] == "gw"
    renewed = tcp(**write_pair(tmp_path, "renewed", str(row[2]), str(row[3])))
    assert renewed.execute("SELECT lake.authenticate_cert()").fetchone() == ("gw",)
    assert identity(renewed) == (None, "gw", "gw", f"cert:{row[0]}", ["write"])
    assert conn.execute(
        "SELECT renewed_from, scopes FROM lake.service_certs WHERE serial = %s", [row[0]]
    ).fetchone() == (serial, ["write"])
    assert [r[0] for r in audit(conn, "cert.renew")] == [str(row[0])]
    # Without a certificate there is nothing to renew from.
    with pytest.raises(psycopg.Error) as err:
        tcp().execute("SELECT * FROM lake.renew_service_cert()")
    assert err.value.sqlstate == "LK017"


def test_the_oauth_gateway_path_needs_the_gateways_certificate(
    conn: Conn, gateway: None, tcp: Connect, tmp_path: Path, as_role: Callable[[str], Conn]
) -> None:
    conn.execute("SELECT lake.link_oauth('github', '583231', 'alice')")
    key = conn.execute("SELECT api_key FROM lake.create_api_key('gw')").fetchone()
    assert key is not None
    with_key = tcp()
    assert with_key.execute("SELECT lake.authenticate(%s, 'session')", [key[0]]).fetchone() == (
        "gw",
    )
    with pytest.raises(psycopg.Error) as err:
        with_key.execute("SELECT lake.act_as_oauth('github', '583231')")
    assert err.value.sqlstate == "LK012"
    _, files = issue(conn, tmp_path)
    svc = tcp(**files)
    svc.execute("SELECT lake.authenticate_cert()")
    assert svc.execute("SELECT lake.act_as_oauth('github', '583231', 'session')").fetchone() == (
        "alice",
    )
    assert identity(svc) is not None and identity(svc)[0] == "alice"  # type: ignore[index]


def test_the_server_certificate_renews_under_open_connections(
    settings: Settings, conn: Conn, tcp: Connect, tls: TlsFiles
) -> None:
    before = server_serial(settings, tls)
    assert before == rules().info(tls.cert("postgres").read_bytes()).serial
    open_one = tcp()
    # The job renews what is due at the time it works for: 25 days on, a third of 30 is left.
    conn.execute("CALL lake.run_maintenance('server_certs', now() + interval '25 days')")
    run = conn.execute(
        "SELECT status, details FROM lake.job_runs WHERE job = 'server_certs'"
    ).fetchone()
    assert run is not None and run[0] == "ok", run
    renewed = {c["name"]: c for c in run[1]["renewed"]}  # type: ignore[index]
    assert renewed["postgres"]["old_serial"] == str(before)
    after = int(renewed["postgres"]["new_serial"])
    assert after != before
    assert rules().info(tls.cert("postgres").read_bytes()).serial == after
    # The open connection goes on over its TLS session.
    assert open_one.execute("SELECT 1").fetchone() == (1,)
    # New connections get the new certificate once the postmaster has reloaded (pg_reload_conf
    # signals it; the wait is bounded).
    deadline = time.monotonic() + 30
    while server_serial(settings, tls) != after:
        assert time.monotonic() < deadline, "the server did not take its new certificate"
        time.sleep(0.1)
    assert tcp().execute("SELECT 1").fetchone() == (1,)
    assert ("postgres", renewed["postgres"]) in audit(conn, "cert.server_renew")
    # Not due at the present: nothing more is renewed.
    conn.execute("CALL lake.run_maintenance('server_certs')")
    last = conn.execute(
        "SELECT details FROM lake.job_runs WHERE job = 'server_certs' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert last == ({"renewed": []},)


def test_the_certs_commands(
    settings: Settings, db: str, gateway: None, tcp: Connect, tls: TlsFiles, tmp_path: Path
) -> None:
    out = tmp_path / "gw-tls"
    issued = json.loads(cli("certs", "issue", "gw", "--out", str(out), "--json", dsn=db).stdout)
    assert issued["sslcert"] == str(out / "gw.crt")
    assert stat.S_IMODE((out / "gw.key").stat().st_mode) == 0o600
    assert (out / "ca.crt").read_bytes() == tls.ca_cert.read_bytes()
    files = {"sslcert": issued["sslcert"], "sslkey": issued["sslkey"]}
    assert tcp(**files).execute("SELECT lake.authenticate_cert()").fetchone() == ("gw",)
    # The service renews its own over TLS with the files it has; they are replaced.
    name = str(conninfo_to_dict(db)["dbname"])
    service_dsn = settings.tcp_dsn(name, user=ROLE, password=PASSWORD)
    renew = ["certs", "renew", "--cert", files["sslcert"], "--key", files["sslkey"]]
    renewed = json.loads(cli(*renew, "--dsn", service_dsn, "--json", dsn=db).stdout)
    assert renewed["serial"] != issued["serial"]
    assert str(rules().info((out / "gw.crt").read_bytes()).serial) == renewed["serial"]
    assert tcp(**files).execute("SELECT lake.authenticate_cert()").fetchone() == ("gw",)
    listed = json.loads(cli("certs", "list", "--json", dsn=db).stdout)
    assert [(c["serial"], c["state"]) for c in listed] == [
        (issued["serial"], "active"),
        (renewed["serial"], "active"),
    ]
    assert "revoked 2" in cli("certs", "revoke", "gw", dsn=db).stdout
    assert {c["state"] for c in json.loads(cli("certs", "list", "--json", dsn=db).stdout)} == {
        "revoked"
    }
    assert cli("certs", "ca", dsn=db).stdout.strip() == str(tls.ca_cert)
    assert cli("certs", "ca", "--pem", dsn=db).stdout.strip() == tls.ca_cert.read_text().strip()
    described = json.loads(cli("certs", "ca", "--json", dsn=db).stdout)
    assert described["path"] == str(tls.ca_cert)
    assert described["fingerprint"] == rules().info(tls.ca_cert.read_bytes()).fingerprint
    refused = cli(*renew, "--dsn", service_dsn, dsn=db, check=False)
    assert refused.returncode == 1
    assert "cannot be renewed: revoked certificate" in refused.stderr
