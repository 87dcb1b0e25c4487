"""The embedded servers' certificates: the lake's CA and one certificate per server, made by
``lake up`` when absent or due (``lake_certs.renewal_due``); the database's job renews them
afterwards. Layout: :class:`lake_client.certs.TlsFiles`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lake_client.certs import CA_NAME, TlsFiles, default_server_names, rules
from lake_client.local.processes import Paths, Say, ServerUser, mkdir, write_private


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
    paths: Paths, user: ServerUser | None, name: str, say: Say, extra_names: Iterable[str] = ()
) -> tuple[Path, Path]:
    """``<name>.crt`` and ``.key`` for a server, issued by the CA when absent or due."""
    tls = ensure_ca(paths, user, say)
    cert, key = tls.cert(name), tls.key(name)
    certs = rules()
    if not (cert.exists() and key.exists()) or certs.renewal_due(cert.read_bytes()):
        say(f"issuing the {name} server certificate ({certs.SERVER_DAYS} days)…")
        ca = certs.Pair(tls.ca_cert.read_bytes(), tls.ca_key.read_bytes())
        pair = certs.issue(
            ca, name, days=certs.SERVER_DAYS, server_names=default_server_names(extra_names)
        )
        _write(key, pair.key_pem, user, 0o600)
        _write(cert, pair.cert_pem, user, 0o644)
    return cert, key
