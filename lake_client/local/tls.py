"""The embedded servers' certificates: the lake's CA and one certificate per server, made by
``lake up`` when absent or due (``lake_certs.renewal_due``); the database's job renews them
afterwards. Layout: :class:`lake_client.certs.TlsFiles`."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from lake_client.certs import CA_NAME, TlsFiles, default_server_names, rules
from lake_client.local.processes import Paths, Say, ServerUser, mkdir, server_user, write_private
from lake_client.transport import ServerFiles

# The doors' certificates that `lake up` makes beside the servers': `lake serve` (HTTPS) and
# `lake grpc`.
DOORS = ("http", "grpc")


def files(paths: Paths) -> TlsFiles:
    return TlsFiles(paths.tls)


def _write(path: Path, pem: bytes, user: ServerUser | None, mode: int) -> None:
    write_private(path, pem.decode("ascii"), user)  # 0600 first: never readable half-written
    path.chmod(mode)


def ensure_ca(paths: Paths, user: ServerUser | None, say: Say) -> TlsFiles:
    """The lake's CA, created when absent; its key is readable by the server user only."""
    tls = files(paths)
    mkdir(tls.folder, 0o755, user)
    if not (tls.ca_cert.exists() and tls.ca_key.exists()):
        say(f"creating the lake's certificate authority in {tls.folder}…")
        ca = rules().create_ca(CA_NAME)
        _write(tls.ca_key, ca.key_pem, user, 0o600)
        _write(tls.ca_cert, ca.cert_pem, user, 0o644)
    return tls


def ensure_server_cert(
    paths: Paths,
    user: ServerUser | None,
    name: str,
    say: Say,
    extra_names: Iterable[str] = (),
    *,
    client: bool = False,
) -> tuple[Path, Path]:
    """``<name>.crt`` and ``.key`` for a server, issued by the CA when absent or due; ``client``:
    a client's too (a Redis Cluster node, which presents it to the other nodes)."""
    tls = ensure_ca(paths, user, say)
    cert, key = tls.cert(name), tls.key(name)
    certs = rules()
    if not (cert.exists() and key.exists()) or certs.renewal_due(cert.read_bytes()):
        say(f"issuing the {name} server certificate ({certs.SERVER_DAYS} days)…")
        ca = certs.Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes())
        pair = certs.issue(
            ca,
            name,
            days=certs.SERVER_DAYS,
            server_names=default_server_names(extra_names),
            client=client,
        )
        _write(key, pair.key_pem, user, 0o600)
        _write(cert, pair.cert_pem, user, 0o644)
    return cert, key


def door_files(home: Path, name: str, say: Say) -> ServerFiles:
    """A door's certificate files (`lake serve`: ``http``, `lake grpc`: ``grpc``) under the
    lake's home, issued now when absent (`lake up` issues them; the database's job renews them)."""
    paths = Paths(home)
    tls = files(paths)
    if not (tls.cert(name).exists() and tls.key(name).exists()):
        ensure_server_cert(paths, server_user(paths), name, say)
    return ServerFiles(tls.cert(name), tls.key(name))


def served_certificate(host: str, port: int, ca_file: Path, timeout: float = 2.0) -> bytes:
    """The certificate (DER) that the TLS server at host:port presents, verified against ca_file."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server presented no certificate")
    return der
