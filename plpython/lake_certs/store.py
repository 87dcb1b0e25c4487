"""The certificates' files as the database server sees them: ``LAKE_HOME/tls`` (the layout of
``lake_client.certs.TlsFiles``), read and written by the server's OS user, who owns the CA's key.

Used by the renewal job (lake_internal._renew_server_certs) and by the issuing of services'
certificates; the rules themselves are ``lake_certs``'.
"""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509

from lake_certs import (
    SERVER_DAYS,
    SERVICE_DAYS,
    Pair,
    client_usage,
    info,
    issue,
    openssl_dn,
    renewal_due,
    server_names,
    signed_by,
)

CA = "ca"
FOLDER = "tls"  # beside the data directory, as lake_client.local.processes.Paths.tls


def tls_root(setting: str, data_directory: str) -> str:
    """The certificates' folder: the tls_dir setting, or (when empty) ``tls`` beside the data
    directory (a backend's working directory)."""
    if setting:
        if not os.path.isabs(setting):
            raise ValueError(f"tls_dir must be an absolute path, not {setting!r}")
        return setting
    return os.path.join(os.path.dirname(os.path.normpath(data_directory)), FOLDER)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def load_ca(folder: str) -> Pair:
    """The lake's CA (its certificate and key), which ``lake up`` made."""
    return Pair(_read(os.path.join(folder, CA + ".crt")), _read(os.path.join(folder, CA + ".key")))


def write_atomic(path: str, data: bytes, mode: int) -> None:
    """Write ``path`` so that a reader sees the old file or the whole new one, never a part:
    a private temporary file in the same folder, synced, then renamed over it."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    if os.path.exists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def server_certs(folder: str, ca_cert_pem: bytes) -> list[str]:
    """The names of the servers' certificates in ``folder``: each ``<name>.crt`` with its
    ``<name>.key`` that the CA signed and that names a server (postgres, redis, http, grpc…)."""
    names = []
    for entry in sorted(os.listdir(folder)):
        name, dot, ext = entry.rpartition(".")
        if not dot or ext != "crt" or name == CA or name.startswith("."):
            continue
        if not os.path.exists(os.path.join(folder, name + ".key")):
            continue
        pem = _read(os.path.join(folder, entry))
        if signed_by(pem, ca_cert_pem) and server_names(pem):
            names.append(name)
    return names


def renew_servers(folder: str, now: dt.datetime, force: bool = False) -> list[dict[str, str]]:
    """Renew each server certificate of ``folder`` that is due at ``now`` (every one with
    ``force``): a new key and a certificate for the same names, valid SERVER_DAYS from the real
    present, written key first. Returns what was renewed (name, old and new serials, until)."""
    if not os.path.exists(os.path.join(folder, CA + ".key")):
        return []  # a lake whose servers' certificates are not the lake's to keep
    ca = load_ca(folder)
    renewed = []
    for name in server_certs(folder, ca.cert_pem):
        cert_path = os.path.join(folder, name + ".crt")
        old = _read(cert_path)
        if not (force or renewal_due(old, now=now)):
            continue
        before = info(old)
        pair = issue(
            ca,
            before.common_name,
            days=SERVER_DAYS,
            server_names=server_names(old),
            client=client_usage(old),
        )
        write_atomic(os.path.join(folder, name + ".key"), pair.key_pem, 0o600)
        write_atomic(cert_path, pair.cert_pem, 0o644)
        after = info(pair.cert_pem)
        renewed.append(
            {
                "name": name,
                "old_serial": str(before.serial),
                "new_serial": str(after.serial),
                "not_after": after.not_after.isoformat(),
            }
        )
    return renewed


def issue_service(folder: str, service: str) -> dict[str, object]:
    """A service's client certificate (mTLS) signed by the lake's CA, valid SERVICE_DAYS: its
    PEM, its new key's PEM (handed to the service once, never kept), the CA's PEM and what the
    lake records of it (serial, issuer as sslinfo reads it, fingerprint, validity)."""
    ca = load_ca(folder)
    pair = issue(ca, service, days=SERVICE_DAYS, client=True)
    facts = info(pair.cert_pem)
    issuer = x509.load_pem_x509_certificate(pair.cert_pem).issuer
    return {
        "serial": str(facts.serial),
        "issuer": openssl_dn(issuer),
        "fingerprint": facts.fingerprint,
        "not_before": facts.not_before.isoformat(),
        "not_after": facts.not_after.isoformat(),
        "certificate": pair.cert_pem.decode("ascii"),
        "private_key": pair.key_pem.decode("ascii"),
        "ca_certificate": ca.cert_pem.decode("ascii"),
    }
