"""The lake's certificates on disk: its CA and its servers' certificates under ``LAKE_HOME/tls``.

The rules (key type, lifetimes, when to renew) have one home, ``plpython/lake_certs``, which the
database's renewal job imports; the client loads the same file by path, because the CA and the
first server certificates must exist before any server starts::

    tls/            mode 0755, owned by the server user
      ca.crt        the lake's CA (0644): what clients trust
      ca.key        its key (0600, the server user's only)
      <name>.crt    a server's certificate (0644), e.g. postgres.crt, redis.crt, http.crt
      <name>.key    its key (0600, the server user's)
"""

from __future__ import annotations

import functools
import importlib.util
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lake_client.config import source_root
from lake_client.errors import ConfigurationError

CA_NAME = "Datapunk Lake CA"


@functools.cache
def rules() -> Any:
    """plpython/lake_certs, loaded by path (it is not a package of the client)."""
    path = source_root() / "plpython" / "lake_certs" / "__init__.py"
    spec = importlib.util.spec_from_file_location("lake_certs", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path}", hint="reinstall Datapunk Lake")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lake_certs", module)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the servers' certificates live (``Paths(home).tls``)."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    def cert(self, name: str) -> Path:
        return self.folder / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"


def default_server_names(extra: Iterable[str] = ()) -> list[str]:
    """The names a local server answers to: loopback, this host's name, and ``extra``."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *extra]
    return list(dict.fromkeys(n for n in names if n and n not in ("0.0.0.0", "::", "*")))


def save_pair(cert_path: Path, key_path: Path, cert_pem: str, key_pem: str) -> None:
    """Write a certificate (0644) and its key (0600, never readable half-written), each replacing
    the old file at once: the key first, so a reader never pairs a new key with nothing."""
    from lake_client.local.processes import write_private

    write_private(key_path, key_pem)
    write_private(cert_path, cert_pem)
    cert_path.chmod(0o644)
