"""Probes of a TLS server for the transport tests: a raw handshake (optionally TLS 1.2 at most)
and a CA that is not the lake's; and service certificates as files, as clients present them."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import psycopg

from lake_client.certs import rules, save_pair
from lake_client.config import Settings
from lake_client.local.processes import Paths
from lake_client.local.tls import files
from lake_client.transport import ServerFiles

LOOPBACK = "127.0.0.1"
Pair = tuple[Path, Path]  # a certificate file and its key file


def write_pair(folder: Path, name: str, cert_pem: str | bytes, key_pem: str | bytes) -> Pair:
    """``<name>.crt`` and ``.key`` in ``folder``, written as the lake writes them
    (lake_client.certs.save_pair: the key 0600, as libpq demands)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    text = [p.decode() if isinstance(p, bytes) else p for p in (cert_pem, key_pem)]
    save_pair(cert, key, *text)
    return cert, key


def issue_service_cert(
    conn: psycopg.Connection[tuple[object, ...]],
    folder: Path,
    service: str = "gw",
    scopes: tuple[str, ...] = ("read", "write"),
) -> tuple[int, Pair]:
    """A service certificate the lake issues and records (lake.issue_service_cert), as files."""
    row = conn.execute(
        "SELECT serial, certificate, private_key FROM lake.issue_service_cert(%s, %s)",
        [service, list(scopes)],
    ).fetchone()
    assert row is not None
    return int(str(row[0])), write_pair(folder, f"{service}-{row[0]}", str(row[1]), str(row[2]))


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
