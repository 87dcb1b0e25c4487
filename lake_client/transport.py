"""TLS 1.3 for the lake's doors (`lake serve`, `lake grpc`) and their clients: one home for how a
server context is made from certificate files that the database's job renews in place, and how a
client trusts the lake's CA.

The renewal job replaces ``<name>.crt`` and ``.key`` atomically while the servers run; a server
therefore asks :class:`ServerFiles` for its credentials at each new connection (a ``stat`` of two
files) and loads them again only when they changed. Open connections keep the session they have.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from lake_client.errors import ConfigurationError

# gRPC's Python API has no minimum TLS version, and its servers accept TLS 1.2. What it has is
# GRPC_SSL_CIPHER_SUITES, the cipher list for TLS 1.2 and older (TLS 1.3's suites are not
# configurable in BoringSSL): naming only a suite for RSA keys, when the lake's keys are ECDSA,
# leaves a TLS 1.2 client nothing to agree on, so only TLS 1.3 handshakes succeed. gRPC reads the
# variable once, when it is imported: lake_client's __init__ sets it before anything imports grpc.
GRPC_CIPHERS_VARIABLE = "GRPC_SSL_CIPHER_SUITES"
GRPC_TLS12_CIPHERS = "ECDHE-RSA-AES128-GCM-SHA256"
_grpc_tls13_only = False


def grpc_tls13_only() -> None:
    """Make this process' gRPC refuse TLS 1.2 (see above); a no-op once grpc is imported."""
    global _grpc_tls13_only
    if "grpc" not in sys.modules:
        os.environ.setdefault(GRPC_CIPHERS_VARIABLE, GRPC_TLS12_CIPHERS)
        _grpc_tls13_only = os.environ[GRPC_CIPHERS_VARIABLE] == GRPC_TLS12_CIPHERS


def check_grpc_tls13_only() -> None:
    """Raise unless this process' gRPC refuses TLS 1.2."""
    if not _grpc_tls13_only:
        raise ConfigurationError(
            "gRPC was loaded before lake_client (or with GRPC_SSL_CIPHER_SUITES set otherwise):"
            " its TLS server would accept TLS 1.2",
            hint="import lake_client before grpc, and leave GRPC_SSL_CIPHER_SUITES unset",
        )


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A TLS 1.3 client context that trusts only ``ca_file`` and checks the server's name."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot read the CA certificate {ca_file}: {exc}",
            hint="run `lake up` (it creates the lake's CA) or name the right file",
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


@dataclass
class ServerFiles:
    """A server's certificate and key files, which the database's job may replace at any time."""

    cert: Path
    key: Path

    def stamp(self) -> tuple[tuple[int, int, int], ...]:
        """What changes when either file is replaced (inode, mtime, size)."""
        try:
            stats = [p.stat() for p in (self.cert, self.key)]
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the server certificate: {exc}",
                hint="run `lake up` (it issues the doors' certificates in LAKE_HOME/tls)",
            ) from None
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def read(self) -> tuple[bytes, bytes]:
        """The certificate and the key, PEM."""
        return self.cert.read_bytes(), self.key.read_bytes()

    def matches(self) -> bool:
        """Whether the key belongs to the certificate (not so for a moment during a renewal)."""
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError):
            return False
        return True


class ServerContext:
    """A TLS 1.3-only server context for :class:`ServerFiles`, made again when they change.

    A pair caught half-replaced (the new certificate, the old key) does not load: the previous
    context keeps serving and the next connection tries again."""

    def __init__(self, files: ServerFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._seen: object = None
        self._context = self._load()  # the first load must work: a clear error otherwise
        self._seen = files.stamp()

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        try:
            context.load_cert_chain(self.files.cert, self.files.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load {self.files.cert} with {self.files.key}: {exc}",
                hint="run `lake up` to issue the certificate again",
            ) from None
        return context

    def get(self) -> ssl.SSLContext:
        """The context for a new connection."""
        with self._lock:
            stamp = self.files.stamp()
            if stamp != self._seen:
                try:
                    self._context = self._load()
                    self._seen = stamp
                except ConfigurationError:
                    pass  # half-replaced: keep serving the previous certificate
            return self._context
