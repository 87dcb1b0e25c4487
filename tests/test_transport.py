"""TLS 1.3 only on every door but PostgreSQL's: the embedded Redis, `lake serve` (HTTPS) and the
gRPC service, each the real server. For each: a TLS 1.2 client, a plaintext client and a client
that trusts another CA are refused, the lake's client works; and a renewed certificate (the files
replaced in place, as the database's job does) is served to new connections while an open one
keeps working."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.backoff import NoBackoff
from redis.retry import Retry

from lake_client.certs import rules
from lake_client.config import Settings
from lake_client.grpc_client import channel
from lake_client.grpc_server import make_server as make_grpc_server
from lake_client.local import redis_server
from lake_client.local.processes import Paths
from lake_client.local.tls import files
from lake_client.server import make_server as make_http_server
from lake_client.transport import ServerFiles, client_context
from tests import tls_probe
from tests.tls_probe import LOOPBACK, handshake, renew_in_place

# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def foreign_ca(tmp_path: Path) -> Path:
    """A CA that is not the lake's."""
    return tls_probe.foreign_ca(tmp_path)


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


# -- Redis --------------------------------------------------------------------------------------


def redis_client(settings: Settings, **options: object) -> redis.Redis:
    password = (settings.home / "secrets" / "redis.password").read_text().strip()
    return redis.Redis(
        host=LOOPBACK,
        port=settings.redis_port,
        password=password,
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),
        **options,  # type: ignore[arg-type]
    )


def test_redis_speaks_tls13_only_to_clients_that_trust_the_lake(
    settings: Settings, foreign_ca: Path
) -> None:
    if settings.external_redis is not None:
        pytest.skip("LAKE_REDIS_URL: an external Redis is not the lake's to configure")
    # The lake's own client (the URL carries the CA): TLS 1.3.
    with redis.Redis.from_url(settings.redis_url()) as client:
        assert client.ping()
    assert handshake(settings.redis_port, settings.ca_file)[0] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(settings.redis_port, settings.ca_file, tls12=True)
    # Plaintext with the right password: the server never reads a command.
    with redis_client(settings) as plain, pytest.raises(redis.ConnectionError):
        plain.ping()
    # TLS with the right password, trusting another CA: the client refuses the server.
    with (
        redis_client(settings, ssl=True, ssl_ca_certs=str(foreign_ca)) as foreign,
        pytest.raises(redis.ConnectionError, match="certificate verify failed"),
    ):
        foreign.ping()


def test_redis_takes_a_renewed_certificate_and_open_connections_go_on(
    settings: Settings,
) -> None:
    if settings.external_redis is not None:
        pytest.skip("LAKE_REDIS_URL: an external Redis is not the lake's to configure")
    tls = files(Paths(settings.home))
    # The database's renewal job may have renewed redis.crt already (tests/test_tls.py does):
    # until something reloads Redis it serves the older certificate, still valid.
    redis_server.reload_tls(settings)
    before = der_of(tls.cert("redis"))
    assert handshake(settings.redis_port, settings.ca_file)[1] == before
    assert redis_server.reload_tls(settings) is False  # it serves the file's: nothing to do
    with redis.Redis.from_url(settings.redis_url(), single_connection_client=True) as old:
        old.set("lake:test:renewal", "before")
        renew_in_place(settings, "redis")
        after = der_of(tls.cert("redis"))
        assert after != before
        assert handshake(settings.redis_port, settings.ca_file)[1] == before  # not yet taken
        assert redis_server.reload_tls(settings) is True
        assert handshake(settings.redis_port, settings.ca_file)[1] == after
        # The connection opened before the renewal works on, on its own session.
        assert old.get("lake:test:renewal") == b"before"
        old.delete("lake:test:renewal")
    with redis.Redis.from_url(settings.redis_url()) as new:
        assert new.ping()


# -- lake serve (HTTPS) ---------------------------------------------------------------------------


@pytest.fixture
def https(db: str, settings: Settings, tmp_path: Path) -> Iterator[tuple[int, ServerFiles]]:
    """`lake serve`'s server on a free port with a certificate of its own in tmp_path (so that a
    test may renew it); its port and files."""
    tls = renew_in_place(settings, "http", tmp_path)
    server = make_http_server(LOOPBACK, 0, db, settings.redis_url(), tls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, tls
    server.shutdown()
    server.server_close()


def test_lake_serve_speaks_tls13_only_to_clients_that_trust_the_lake(
    settings: Settings, https: tuple[int, ServerFiles], foreign_ca: Path
) -> None:
    port, _ = https
    url = f"https://{LOOPBACK}:{port}/health/live"
    with urllib.request.urlopen(url, context=client_context(settings.ca_file)) as response:
        assert response.status == 200
    assert handshake(port, settings.ca_file)[0] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(port, settings.ca_file, tls12=True)
    # Plaintext HTTP: no HTTP answer comes back.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health/live", timeout=10)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(
            url, timeout=10, context=ssl.create_default_context(cafile=foreign_ca)
        )
    # After the refusals the server still serves.
    with urllib.request.urlopen(url, context=client_context(settings.ca_file)) as response:
        assert response.status == 200


def test_lake_serve_takes_a_renewed_certificate_and_open_connections_go_on(
    settings: Settings, https: tuple[int, ServerFiles]
) -> None:
    port, tls = https
    before = der_of(tls.cert)
    context = client_context(settings.ca_file)
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as old,
    ):
        assert old.getpeercert(binary_form=True) == before
        renew_in_place(settings, "http", tls.cert.parent)
        after = der_of(tls.cert)
        assert after != before
        assert handshake(port, settings.ca_file)[1] == after  # taken at the next connection
        # The connection made before the renewal sends its request now and gets its answer.
        old.sendall(b"GET /health/live HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := old.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b'{"status": "ok"}')


# -- gRPC -----------------------------------------------------------------------------------------


@pytest.fixture
def grpc_door(db: str, settings: Settings, tmp_path: Path) -> Iterator[Callable[..., int]]:
    running: list[tuple[grpc.Server, object]] = []

    def start(client_ca: Path | None = None) -> int:
        tls = renew_in_place(settings, "grpc", tmp_path)
        server, port, service = make_grpc_server(
            db, tls=tls, client_ca=client_ca, redis_url=settings.redis_url()
        )
        running.append((server, service))
        return port

    yield start
    for server, service in running:
        server.stop(None).wait()
        service.close()  # type: ignore[attr-defined]


def health(ch: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(reply.status)


SERVING = health_pb2.HealthCheckResponse.SERVING


def test_grpc_speaks_tls13_only_to_clients_that_trust_the_lake(
    settings: Settings, grpc_door: Callable[..., int], foreign_ca: Path
) -> None:
    port = grpc_door()
    target = f"{LOOPBACK}:{port}"
    with channel(target) as ch:  # the lake's CA by default
        assert health(ch) == SERVING
    assert handshake(port, settings.ca_file, alpn=["h2"])[0] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(port, settings.ca_file, tls12=True, alpn=["h2"])
    with channel(target, insecure=True) as ch, pytest.raises(grpc.RpcError) as plain:
        health(ch)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    with channel(target, ca_file=foreign_ca) as ch, pytest.raises(grpc.RpcError) as foreign:
        health(ch)
    assert foreign.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_grpc_takes_a_renewed_certificate_and_open_channels_go_on(
    settings: Settings, grpc_door: Callable[..., int], tmp_path: Path
) -> None:
    port = grpc_door()
    target = f"{LOOPBACK}:{port}"
    before = der_of(tmp_path / "grpc.crt")
    with channel(target) as old:
        assert health(old) == SERVING  # connected, before the renewal
        renew_in_place(settings, "grpc", tmp_path)
        after = der_of(tmp_path / "grpc.crt")
        assert handshake(port, settings.ca_file, alpn=["h2"])[1] == after
        assert health(old) == SERVING  # the open channel's connection goes on
        with channel(target) as new:
            assert health(new) == SERVING
    assert before != after


def test_grpc_with_client_ca_asks_for_a_certificate_of_the_lake(
    settings: Settings, grpc_door: Callable[..., int], tmp_path: Path
) -> None:
    """mTLS for a gateway: without a client certificate, or with one another CA signed, no
    call gets through; with one the lake's CA signed, calls do."""
    port = grpc_door(client_ca=settings.ca_file)
    target = f"{LOOPBACK}:{port}"
    with channel(target) as ch, pytest.raises(grpc.RpcError):
        health(ch)
    certs = rules()
    tls = files(Paths(settings.home))
    ours = certs.issue(
        certs.Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes()), "gw", days=7, client=True
    )
    other = certs.issue(certs.create_ca("Someone Else's CA"), "gw", days=7, client=True)
    for name, pair in (("ours", ours), ("other", other)):
        (tmp_path / f"{name}.crt").write_bytes(pair.cert_pem)
        (tmp_path / f"{name}.key").write_bytes(pair.key_pem)
    pair_of = {n: (tmp_path / f"{n}.crt", tmp_path / f"{n}.key") for n in ("ours", "other")}
    with channel(target, client_cert=pair_of["other"]) as ch, pytest.raises(grpc.RpcError):
        health(ch)
    with channel(target, client_cert=pair_of["ours"]) as ch:
        assert health(ch) == SERVING


@pytest.mark.fast
def test_this_process_grpc_refuses_tls12() -> None:
    """lake_client set GRPC_SSL_CIPHER_SUITES before grpc was imported (lake_client.transport)."""
    from lake_client.transport import GRPC_TLS12_CIPHERS, check_grpc_tls13_only

    assert os.environ.get("GRPC_SSL_CIPHER_SUITES") == GRPC_TLS12_CIPHERS
    check_grpc_tls13_only()


@pytest.mark.fast
def test_grpc_refuses_a_certificate_whose_key_would_let_tls12_in(tmp_path: Path) -> None:
    """TLS 1.2 is kept out of gRPC by a TLS 1.2 suite for RSA keys only: an RSA certificate
    would let it in, so the server refuses to start with one."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from lake_client import errors

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    tls = ServerFiles(tmp_path / "rsa.crt", tmp_path / "rsa.key")
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(errors.ConfigurationError, match="no ECDSA key"):
        make_grpc_server("dbname=none", tls=tls)
