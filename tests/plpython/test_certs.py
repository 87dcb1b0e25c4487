"""plpython/lake_certs outside the database: the CA, server and service certificates, renewal."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpython"))

import lake_certs as certs

pytestmark = pytest.mark.fast  # needs no server (tests/conftest.py)

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> certs.Pair:
    return certs.create_ca("test CA", now=NOW)


def usages(pem: bytes) -> set[x509.ObjectIdentifier]:
    cert = x509.load_pem_x509_certificate(pem)
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_signs_only_end_entities(ca: certs.Pair) -> None:
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert certs.info(ca.cert_pem).is_ca


def test_server_certificate_names_and_life(ca: certs.Pair) -> None:
    pair = certs.issue(ca, "postgres", days=30, server_names=["localhost", "127.0.0.1"], now=NOW)
    i = certs.info(pair.cert_pem)
    assert i.common_name == "postgres" and not i.is_ca
    assert i.not_after - i.not_before == dt.timedelta(days=30)
    assert i.not_before < NOW  # backdated a little for clocks behind ours
    assert usages(pair.cert_pem) == {ExtendedKeyUsageOID.SERVER_AUTH}
    san = x509.load_pem_x509_certificate(pair.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert certs.signed_by(pair.cert_pem, ca.cert_pem)


def test_service_certificate_is_a_client_certificate(ca: certs.Pair) -> None:
    pair = certs.issue(ca, "gateway", days=7, client=True, now=NOW)
    assert usages(pair.cert_pem) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert certs.info(pair.cert_pem).common_name == "gateway"


def test_every_certificate_has_its_own_key_and_serial(ca: certs.Pair) -> None:
    a = certs.issue(ca, "x", days=7, client=True, now=NOW)
    b = certs.issue(ca, "x", days=7, client=True, now=NOW)
    assert a.key_pem != b.key_pem
    assert certs.info(a.cert_pem).serial != certs.info(b.cert_pem).serial


def test_another_ca_did_not_sign_it(ca: certs.Pair) -> None:
    pair = certs.issue(ca, "x", days=7, client=True, now=NOW)
    assert not certs.signed_by(pair.cert_pem, certs.create_ca("test CA", now=NOW).cert_pem)


def test_a_certificate_is_for_something() -> None:
    with pytest.raises(ValueError, match="server"):
        certs.issue(certs.create_ca("c"), "nothing", days=1)


@pytest.mark.parametrize(
    ("days_later", "due"), [(0, False), (19, False), (21, True), (31, True), (-1, True)]
)
def test_renewal_when_a_third_of_the_life_is_left(
    ca: certs.Pair, days_later: int, due: bool
) -> None:
    pair = certs.issue(ca, "redis", days=30, server_names=["localhost"], now=NOW)
    assert certs.renewal_due(pair.cert_pem, now=NOW + dt.timedelta(days=days_later)) is due


def test_a_tls13_handshake_trusts_the_chain(ca: certs.Pair, tmp_path: Path) -> None:
    """OpenSSL (what every server of the lake uses) completes a TLS 1.3 handshake with the
    server's pair, verifying it through the CA and the host name; another CA fails it."""
    pair = certs.issue(ca, "http", days=30, server_names=["localhost"])
    (tmp_path / "s.crt").write_bytes(pair.cert_pem)
    (tmp_path / "s.key").write_bytes(pair.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")

    def handshake(trusted: bytes) -> str | None:
        client = ssl.create_default_context(cadata=trusted.decode())
        a, b = socket.socketpair()
        with a, b:
            result: list[BaseException] = []

            def serve() -> None:
                try:
                    with server.wrap_socket(b, server_side=True):
                        pass
                except (ssl.SSLError, OSError) as exc:
                    result.append(exc)

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                with client.wrap_socket(a, server_hostname="localhost") as tls:
                    return tls.version()
            except ssl.SSLCertVerificationError:
                return None
            finally:
                a.close()
                thread.join(10)

    assert handshake(ca.cert_pem) == "TLSv1.3"
    assert handshake(certs.create_ca("test CA").cert_pem) is None
