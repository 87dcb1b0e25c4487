"""Archives of expired partitions: gzip-compressed JSON Lines plus a manifest.

Runs inside PostgreSQL (PL/Python, as the server's OS user) and is plain Python, so it is
unit-tested outside the database. The database turns each row into one line of JSON text
(``row_to_json``, all columns, ordered by id); this module only writes those lines, hashes them
and reads them back. The SHA-256 is taken over the uncompressed content (every line with its
``\\n``), so it does not depend on the compressor, and the same digest computed from the table
again proves that a file holds exactly what the partition holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

# Fast compression: an archive is written once, under a lock that holds up erasure of that month.
COMPRESS_LEVEL = 1
READ_CHUNK = 1 << 20
DATA_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"


class Digest(NamedTuple):
    rows: int
    sha256: str


def archive_root(setting: str, data_directory: str) -> str:
    """The archive folder: the setting, or (when empty) ``lake_archive`` beside the data
    directory."""
    if setting:
        if not os.path.isabs(setting):
            raise ValueError(f"archive_dir must be an absolute path, not {setting!r}")
        return setting
    return os.path.join(os.path.dirname(os.path.normpath(data_directory)), "lake_archive")


def archive_paths(root: str, dataset: str, month: str, stamp: str) -> tuple[str, str]:
    """Data file and manifest of one archive: ``<root>/<dataset>/<YYYY-MM>/<name>``."""
    folder = os.path.join(root, dataset, month)
    name = f"{dataset}_{month}_{stamp}"
    return (os.path.join(folder, name + DATA_SUFFIX), os.path.join(folder, name + MANIFEST_SUFFIX))


def partition_lines(plpy: Any, partition: str, fetch: int = 10_000) -> Iterator[str]:
    """Each row of user_data_partitions.<partition> as the line an archive holds (row_to_json,
    all columns), in table order, fetched `fetch` rows at a time through `plpy` (PL/Python's
    module), so that writing an archive and checking one serialise a partition the same way."""
    table = "user_data_partitions." + plpy.quote_ident(partition)
    cursor = plpy.cursor(f"SELECT row_to_json(t)::text AS line FROM ONLY {table} AS t")
    while rows := cursor.fetch(fetch):
        for row in rows:
            yield row["line"]


def digest_lines(lines: Iterable[str]) -> Digest:
    """Rows and SHA-256 of lines as an archive stores them."""
    h = hashlib.sha256()
    n = 0
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
        n += 1
    return Digest(n, h.hexdigest())


def _write_atomically(path: str, write: Iterable[bytes], *, compress: bool) -> int:
    """Write to a temporary name, fsync, rename: a file under its final name is complete."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        if compress:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=COMPRESS_LEVEL, mtime=0
            ) as out:
                for chunk in write:
                    out.write(chunk)
        else:
            for chunk in write:
                raw.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return os.path.getsize(path)


# What an archive's lines are, as its manifest says.
FORMAT = "JSON Lines, gzip; one object a row (row_to_json: times UTC, bytea hex)"


def describe(dataset: str, partition: str, month: str, columns: object) -> dict[str, object]:
    """The manifest's description of a new archive of `month` (YYYY-MM) of `partition`, made
    now; write_archive adds the counts and digest."""
    return {
        "dataset": dataset,
        "partition": partition,
        "month": month,
        "columns": columns,
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
    }


def write_archive(
    data_path: str, manifest_path: str, lines: Iterable[str], manifest: dict[str, object]
) -> dict[str, object]:
    """Write ``lines`` compressed to ``data_path`` and the manifest (``manifest`` plus
    ``row_count``, ``sha256`` and ``bytes``) to ``manifest_path``; create folders as needed.
    Returns the full manifest."""
    os.makedirs(os.path.dirname(data_path), mode=0o700, exist_ok=True)
    h = hashlib.sha256()
    count = 0

    def chunks() -> Iterator[bytes]:
        nonlocal count
        buf: list[bytes] = []
        size = 0
        for line in lines:
            b = line.encode() + b"\n"
            h.update(b)
            count += 1
            buf.append(b)
            size += len(b)
            if size >= READ_CHUNK:
                yield b"".join(buf)
                buf, size = [], 0
        if buf:
            yield b"".join(buf)

    nbytes = _write_atomically(data_path, chunks(), compress=True)
    full = dict(manifest)
    full.update(
        file=os.path.basename(data_path), row_count=count, sha256=h.hexdigest(), bytes=nbytes
    )
    text = json.dumps(full, indent=2, sort_keys=True) + "\n"
    _write_atomically(manifest_path, [text.encode()], compress=False)
    return full


def digest_file(data_path: str) -> Digest:
    """Rows and SHA-256 of an archive's uncompressed content, read back from disk. Raises
    OSError (or EOFError, gzip.BadGzipFile) when the file is missing or damaged."""
    h = hashlib.sha256()
    n = 0
    last = b"\n"
    with gzip.open(data_path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            h.update(chunk)
            n += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        n += 1  # a truncated last line still counts, so the count cannot match by accident
    return Digest(n, h.hexdigest())


def read_lines(data_path: str) -> Iterator[str]:
    """The archive's lines (one JSON object each), without their newline."""
    with gzip.open(data_path, "rt", encoding="utf-8", newline="\n") as f:
        for line in f:
            yield line.rstrip("\n")


def read_manifest(manifest_path: str) -> dict[str, object]:
    with open(manifest_path, encoding="utf-8") as f:
        result: dict[str, object] = json.load(f)
    return result


def orphans(root: str, known: Iterable[str], before: float, database: str) -> list[str]:
    """Archives under ``root`` (data file and manifest) that no archive names (``known``), whose
    manifest says they were written for ``database`` and whose data file was last written before
    ``before`` (seconds since the epoch): left by a transaction that wrote them and then rolled
    back. Younger files may belong to a transaction still running, and files of another database
    sharing the folder are not this database's to judge, so both are left alone."""
    names = set(known)
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(DATA_SUFFIX) or path in names:
                continue
            manifest = path[: -len(DATA_SUFFIX)] + MANIFEST_SUFFIX
            try:
                if os.stat(path).st_mtime >= before:
                    continue
                if read_manifest(manifest).get("database") != database:
                    continue
            except (OSError, ValueError):
                continue
            found += [path, manifest]
    return sorted(found)


def remove(paths: Iterable[str]) -> int:
    """Delete files that exist; returns how many were deleted. Empty folders are left."""
    n = 0
    for path in paths:
        try:
            os.unlink(path)
            n += 1
        except FileNotFoundError:
            pass
    return n


def _owned_by(line: str, user_id: str, needle: str) -> bool:
    # The id as a JSON string must appear in the line before it is worth parsing.
    return needle in line and json.loads(line).get("user_id") == user_id


def count_user_lines(data_path: str, user_id: str) -> int:
    """How many of the archive's lines (rows) belong to ``user_id`` (their ``user_id``)."""
    needle = json.dumps(user_id)
    return sum(1 for line in read_lines(data_path) if _owned_by(line, user_id, needle))


def lines_without(data_path: str, user_id: str) -> Iterator[str]:
    """The archive's lines but those of ``user_id``, in order (an erasure's rewrite)."""
    needle = json.dumps(user_id)
    for line in read_lines(data_path):
        if not _owned_by(line, user_id, needle):
            yield line
