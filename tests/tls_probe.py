"""Probes of a TLS server for the transport tests: a raw handshake (optionally TLS 1.2 at most)
and a CA that is not the lake's."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

from lake_client.certs import rules
from lake_client.config import Settings
from lake_client.local.processes import Paths
from lake_client.local.tls import files
from lake_client.transport import ServerFiles

LOOPBACK = "127.0.0.1"


def handshake(
    port: int, ca: Path, *, tls12: bool = False, alpn: list[str] | None = None
) -> tuple[str, bytes]:
    """A TLS handshake with LOOPBACK:port (TLS 1.2 at most when ``tls12``); the version agreed
    and the server's certificate (DER). Raises ssl.SSLError (or OSError) when refused."""
    context = ssl.create_default_context(cafile=str(ca))
    if tls12:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        context.set_alpn_protocols(alpn)
    with (
        socket.create_connection((LOOPBACK, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
        version = conn.version()
    assert der is not None and version is not None
    return version, der


def foreign_ca(folder: Path) -> Path:
    """The certificate of a new CA that is not the lake's, written into ``folder``."""
    path = folder / "foreign-ca.crt"
    path.write_bytes(rules().create_ca("Someone Else's CA").cert_pem)
    return path


def renew_in_place(settings: Settings, name: str, folder: Path | None = None) -> ServerFiles:
    """A fresh server certificate of the lake's CA, written as ``<name>.crt`` and ``.key`` into
    ``folder`` (default: the lake's tls folder) by replacing the files, as the renewal job does
    (a rename, never a half-written file), with the owner and mode the files had."""
    tls = files(Paths(settings.home))
    ca = rules().Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes())
    pair = rules().issue(ca, name, days=30, server_names=[LOOPBACK, "localhost"])
    where = folder if folder is not None else tls.folder
    target = ServerFiles(where / f"{name}.crt", where / f"{name}.key")
    for path, pem in ((target.key, pair.key_pem), (target.cert, pair.cert_pem)):
        tmp = path.with_name(path.name + ".new")
        tmp.write_bytes(pem)
        tmp.chmod(0o600 if path == target.key else 0o644)
        if path.exists():
            owner = path.stat()
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    return target
