"""Witnesses of the audit chain's head, kept where the database cannot rewrite them.

The audit log's hash chain (lake.audit_log) shows an edit only to whoever cannot recompute it: a
database superuser who disables the guard triggers, changes an entry and recomputes the hashes
after it and the head passes lake.verify_audit_chain(). A witness anchors the chain outside the
database: the head's id and hash, when that entry joined the chain and when it was witnessed,
signed with an Ed25519 key the database does not hold, appended to a file and to a Redis stream.
A rewritten past changes the hash of every entry after the edit, so the chain no longer matches
any witness of a later head: :func:`check` (``lake audit verify``) finds it.

Where they live:

* the key: ``LAKE_WITNESS_KEY``, default ``<lake home>/secrets/witness.key`` (PKCS#8 PEM, mode
  0600, owned by the OS user who runs ``lake``; run as root, the embedded servers run as
  ``postgres``, who cannot read it). Made on first use. Its public half verifies.
* the file: ``LAKE_WITNESS_DIR``, default ``<lake home>/witness``, file ``audit-heads.jsonl``:
  one JSON object a line, appended (folder mode 0700).
* the stream: ``lake:audit-witness`` in Redis, the same objects (about STREAM_MAXLEN kept).

Not the archive folder: the server's OS user writes it (PL/Python), and so can a database
superuser (COPY TO a file); the witness folder and key belong to the user who runs ``lake``.

The bridge (``lake bridge``) witnesses the head when it moved, at most every WITNESS_EVERY_S;
``lake audit witness`` does it once. Each witness names its database (system identifier and
database oid, as the bridge's stream does); a check looks only at this database's. Witnesses of
entries older than the oldest kept (dropped by the audit log's retention, 365 days) are skipped
and counted. What a check trusts: the key, and the database's own hash function and
lake.verify_audit_chain(); a superuser who also replaces those is beyond it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg.rows import tuple_row
from redis.cluster import RedisCluster

from lake_client.config import Settings
from lake_client.errors import ConfigurationError, from_psycopg
from lake_client.queries import sql

__all__ = ["WITNESS_EVERY_S", "Check", "Witness", "check", "folder_path", "key_path", "load_key"]

STREAM = "lake:audit-witness"
STREAM_MAXLEN = 100_000
FILE = "audit-heads.jsonl"
WITNESS_EVERY_S = 60.0
_SIGNED = ("lake", "id", "hash", "at", "witnessed_at")


def key_path(settings: Settings) -> Path:
    env = os.environ.get("LAKE_WITNESS_KEY")
    return Path(env) if env else settings.home / "secrets" / "witness.key"


def folder_path(settings: Settings) -> Path:
    env = os.environ.get("LAKE_WITNESS_DIR")
    return Path(env) if env else settings.home / "witness"


def load_key(path: Path, *, create: bool = False) -> Ed25519PrivateKey | None:
    """The witness key at `path`; made (mode 0600) when missing and `create`, else None."""
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: two witnesses starting at once do not overwrite each other's key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_key(path)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return key
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot read the audit witness key {path}: {exc}",
            hint="LAKE_WITNESS_KEY names a PEM Ed25519 key readable by this OS user",
        ) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigurationError(f"the audit witness key {path} is not an Ed25519 key")
    return loaded


def _message(w: dict[str, Any]) -> bytes:
    return orjson.dumps({k: w[k] for k in _SIGNED}, option=orjson.OPT_SORT_KEYS)


def _rows(conn: psycopg.Connection[Any], name: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of query `name` as tuples, whatever the connection's row factory."""
    try:
        with conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute(sql(name), params or None).fetchall()
    except psycopg.Error as exc:
        raise from_psycopg(exc) from exc


class Witness:
    """Signs the chain's head and appends it to the witness file and the Redis stream."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        folder: Path,
        client: redis.Redis | RedisCluster | None,
        *,
        stream: str = STREAM,
    ) -> None:
        self.key = key
        self.folder = folder
        self.client = client
        self.stream = stream
        self.last: tuple[str, int] | None = None  # (lake, id) last witnessed by this process

    @classmethod
    def from_settings(
        cls, settings: Settings, client: redis.Redis | RedisCluster | None
    ) -> Witness:
        key = load_key(key_path(settings), create=True)
        assert key is not None
        return cls(key, folder_path(settings), client)

    def witness_head(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        """Witness the chain's head (the newest sealed entry) unless this process already did;
        returns the witness, or None when there is nothing new."""
        lake = str(_rows(conn, "lake_identity")[0][0])
        rows = _rows(conn, "audit_chain_head")
        if not rows:
            return None
        head_id, head_hash, head_at = rows[0]
        if self.last == (lake, int(head_id)):
            return None
        w: dict[str, Any] = {
            "lake": lake,
            "id": int(head_id),
            "hash": bytes(head_hash).hex(),
            "at": head_at.isoformat(),
            "witnessed_at": datetime.now(UTC).isoformat(),
        }
        w["sig"] = self.key.sign(_message(w)).hex()
        line = orjson.dumps(w)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.folder / FILE, "ab") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        if self.client is not None:
            self.client.xadd(self.stream, {"witness": line}, maxlen=STREAM_MAXLEN, approximate=True)
        self.last = (lake, int(head_id))
        return w


@dataclass
class Check:
    """What a check of the chain against its witnesses found."""

    checked: int = 0  # witnesses of this database compared with the chain
    purged: int = 0  # of entries older than the oldest kept (retention)
    other_lakes: int = 0  # of other databases
    newest: str | None = None  # when the newest witness of this database was made
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the chain was rewritten, or forged
    warnings: list[str] = field(default_factory=list)  # a source could not be read

    @property
    def ok(self) -> bool:
        return not self.problems


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(
    folder: Path, client: redis.Redis | RedisCluster | None, stream: str, out: Check
) -> list[tuple[str, bytes]]:
    """Every witness line of the file and the stream, with where it was found."""
    found: list[tuple[str, bytes]] = []
    path = folder / FILE
    if path.exists():
        out.sources.append(str(path))
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                found.append((f"{path}:{n}", line))
    if client is not None:
        try:
            entries = client.xrange(stream)
        except redis.RedisError as exc:
            out.warnings.append(f"cannot read the witness stream {stream} from Redis: {exc}")
        else:
            out.sources.append(f"redis {stream}")
            for entry_id, fields in entries or ():
                raw = (fields or {}).get(b"witness", b"")
                found.append((f"{stream} {_text(entry_id)}", _text(raw).encode()))
    return found


def check(
    conn: psycopg.Connection[Any],
    public_key: Ed25519PublicKey,
    folder: Path,
    client: redis.Redis | RedisCluster | None,
    *,
    stream: str = STREAM,
) -> Check:
    """Compare the audit chain with its witnesses (the file in `folder` and the Redis stream):
    every witness must be signed by the key, and the chain's entry at its id must still have its
    hash. Call it after lake.verify_audit_chain(), which checks the links between them."""
    out = Check()
    lake = str(_rows(conn, "lake_identity")[0][0])
    mine: dict[tuple[int, str], dict[str, Any]] = {}
    for where, raw in _read(folder, client, stream, out):
        try:
            w = orjson.loads(raw)
            public_key.verify(bytes.fromhex(w["sig"]), _message(w))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidSignature):
            out.problems.append(f"witness {where} is not signed by the witness key")
            continue
        if w["lake"] != lake:
            out.other_lakes += 1
            continue
        mine.setdefault((int(w["id"]), str(w["hash"])), w)
    rows = _rows(conn, "audit_chain_at", ids=sorted({i for i, _ in mine}))
    chain = {int(i): bytes(h).hex() for i, h in rows}
    oldest = _rows(conn, "audit_chain_oldest")[0][0]
    for (entry, digest), w in sorted(mine.items()):
        out.newest = max(out.newest or "", w["witnessed_at"])
        if oldest is not None and entry < oldest:
            out.purged += 1
            continue
        out.checked += 1
        if entry not in chain:
            out.problems.append(
                f"entry {entry}, witnessed at {w['witnessed_at']}, is missing from the chain"
            )
        elif chain[entry] != digest:
            out.problems.append(
                f"entry {entry} differs from its witness of {w['witnessed_at']}: the chain up to"
                " it was rewritten"
            )
    return out
