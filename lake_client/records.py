"""Reading input as records: JSON Lines, a JSON array, or CSV, from a file, a zip archive's
members, or stdin; gzip, bzip2 and xz are read directly. Compression is told by the content's
first bytes, never by the name; the format by the name (compression suffixes removed), else by
the first character of the content.

A record is passed on as the exact bytes read (plus a reference such as "line 17") so that the
database, not the client, judges it: malformed lines are quarantined with their raw bytes
rather than dropped or "fixed" here. Everything streams: no file is held in memory whole.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import hashlib
import io
import lzma
import math
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, cast

import orjson

from lake_client.errors import InputError

FORMATS = ("jsonl", "json", "csv")
STDIN = "-"
_BLOCK = 1 << 20
_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Record:
    ref: str  # where it came from, e.g. "line 17" or "[3]"
    raw: bytes  # the record's JSON text exactly as read


# -- where the bytes come from ------------------------------------------------------------------


def printable(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) become
    \\xNN escapes, so the name can be shown and stored as a batch's origin."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def compression(head: bytes) -> str | None:
    """gzip, bzip2, xz or zip from a stream's first bytes (their magic numbers); None: plain."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if re.match(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", head):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    return None


@dataclass(frozen=True)
class Source:
    """One stream of records: a file, one member of a zip archive, or stdin."""

    label: str  # how messages (and the batches' origin) name it
    fmt: str  # jsonl, json, csv, a source format's reader (lake_client.exports); "": untold
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]  # its content, from the start
    rereadable: bool = True  # False for stdin: read once, so a load of it cannot be resumed
    member: str | None = None  # the member's name in its zip archive
    told: bool = False  # the format was given (--format), not found
    problem: str | None = None  # why the format could not be told (fmt ""), raised on reading
    problem_hint: str | None = None


def sources(arg: str, fmt: str | None = None) -> list[Source]:
    """The sources named by a command-line argument: `-` is stdin, a zip archive gives one per
    member. Fails with InputError, before anything is read as records, when the argument is
    not a readable file or the format cannot be told."""
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if arg == STDIN:
        return [_stdin_source(fmt)]
    path = Path(arg)
    shown = printable(arg)
    if not path.exists():
        raise InputError(f"{shown} does not exist")
    if path.is_dir():
        raise InputError(
            f"{shown} is a directory, not a file",
            hint="give one file (a zip archive loads each of its members)",
        )
    with _reading(shown), path.open("rb") as fh:
        head = fh.read(16)
    if compression(head) == "zip":
        return _zip_sources(path, fmt)
    opener = _file_opener(path)
    name = printable(path.name)
    return [_told(Source(name, "", opener, told=fmt is not None), name, fmt)]


def _told(source: Source, name: str, fmt: str | None) -> Source:
    """The source with its format, or with the reason it cannot be told: a dataset's source
    format may still say how to read it (lake_client.loader), else reading it fails."""
    try:
        return replace(source, fmt=_format(name, source.open, fmt, source.label))
    except InputError as exc:
        return replace(source, problem=str(exc), problem_hint=exc.hint)


def _file_opener(
    path: Path, member: str | None = None
) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        with path.open("rb") as fh:
            if member is None:
                yield _decompressed(fh, printable(path.name))
                return
            with zipfile.ZipFile(fh) as zf:
                try:
                    inner = zf.open(member)
                except RuntimeError as exc:  # an encrypted member
                    raise InputError(
                        f"cannot read {printable(path.name)}:{member}: {exc}"
                    ) from None
                with inner:
                    yield _decompressed(inner, f"{printable(path.name)}:{member}")

    return opener


def _zip_sources(path: Path, fmt: str | None) -> list[Source]:
    name = printable(path.name)
    with _reading(name), zipfile.ZipFile(path) as zf:
        members = [
            i.filename
            for i in zf.infolist()
            if not i.is_dir() and not i.filename.startswith("__MACOSX/")
        ]
    if not members:
        raise InputError(f"the zip archive {name} holds no files")
    out = []
    for member in members:
        opener = _file_opener(path, member)
        label = f"{name}:{printable(member)}"
        out.append(
            _told(Source(label, "", opener, member=member, told=fmt is not None), member, fmt)
        )
    return out


def _stdin_source(fmt: str | None) -> Source:
    raw: Any = sys.stdin.buffer
    # peek() needs a buffered reader (a test runner's stdin may be a BytesIO).
    stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if compression(stream.peek(16)[:16]) == "zip":
        raise InputError(
            "a zip archive cannot be read from stdin (its index is at its end)",
            hint="give its path: lake ingest DATASET archive.zip",
        )
    content = _decompressed(cast(IO[bytes], stream), "stdin")
    used: list[bool] = []

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        if used:
            raise InputError("stdin can be read only once")
        used.append(True)
        yield content

    source = Source("stdin", "", opener, rereadable=False, told=fmt is not None)
    try:
        return replace(source, fmt=_format("stdin", opener, fmt, peeked=content))
    except InputError as exc:  # a dataset's source format may still say how to read it
        return replace(source, problem=str(exc), problem_hint=exc.hint)


def _decompressed(stream: IO[bytes], label: str) -> IO[bytes]:
    """The content of `stream`, decompressed when its first bytes say gzip, bzip2 or xz."""
    kind = compression(_peek(stream, 16))
    if kind is None:
        return stream
    if kind == "zip":
        raise InputError(
            f"{label} is a zip archive inside another file or archive",
            hint="unzip it and load its files",
        )
    # The decompressors read from `stream`, which the caller closes.
    inner: IO[bytes]
    if kind == "gzip":
        inner = cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    elif kind == "bzip2":
        inner = cast(IO[bytes], bz2.BZ2File(stream))
    else:
        inner = cast(IO[bytes], lzma.LZMAFile(stream))  # noqa: SIM115
    return cast(IO[bytes], io.BufferedReader(cast(Any, inner), _BLOCK))


def _peek(stream: IO[bytes], n: int) -> bytes:
    return bytes(cast(Any, stream).peek(n)[:n])


@contextlib.contextmanager
def _reading(label: str) -> Iterator[None]:
    """Errors of reading or decompressing as InputError, naming the input."""
    try:
        yield
    except InputError:
        raise
    except (OSError, EOFError, lzma.LZMAError, zlib.error, zipfile.BadZipFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(
            f"cannot read {label}: {reason}",
            hint="is the file complete? a compressed file or archive may be damaged or cut off",
        ) from None


def _format(
    name: str,
    opener: Callable[[], contextlib.AbstractContextManager[IO[bytes]]],
    explicit: str | None,
    label: str | None = None,
    *,
    peeked: IO[bytes] | None = None,
) -> str:
    """The format: --format, else the name's suffix (compression suffixes aside), else the
    content's first character ([ for a JSON array, { for JSON Lines)."""
    if explicit:
        return explicit
    label = label or name
    suffixes = [s.lower() for s in Path(name).suffixes]
    while suffixes and suffixes[-1] in (".gz", ".gzip", ".bz2", ".xz"):
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if peeked is not None:
        head = _peek(peeked, 4096)
    else:
        with _reading(label), opener() as fh:
            head = _peek(fh, 4096)
    head = head.removeprefix(_BOM).lstrip(_WS)
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{") or (suffix == ".json" and not head):
        return "jsonl"  # a .json file may hold one array or, commonly, JSON Lines
    if suffix == ".json":
        raise InputError(
            f"{label} is not JSON: it starts with {head[:20]!r}",
            hint="a .json file holds one array of records, or one record a line",
        )
    raise InputError(
        f"cannot tell the format of {label}",
        hint="name it .jsonl, .json or .csv (.gz, .bz2, .xz as well), or pass --format",
    )


# -- records --------------------------------------------------------------------------------------


def records(
    source: Source, csv_types: Mapping[str, frozenset[str]] | None = None
) -> Iterator[Record]:
    """The records of a source, streamed. In a zip archive, a record's reference starts with
    its member's name."""
    yield from _records(source, csv_types, None)


@dataclass(frozen=True)
class Scan:
    sha256: str  # of the (decompressed) content
    records: int


def scan(source: Source, csv_types: Mapping[str, frozenset[str]] | None = None) -> Scan:
    """Read a source through without keeping anything: fails (InputError) on what would fail
    half-way through a load (a damaged archive, a JSON array that is not closed, a malformed
    CSV), before anything is written."""
    digest = hashlib.sha256()
    count = 0
    for _ in _records(source, csv_types, digest):
        count += 1
    return Scan(digest.hexdigest(), count)


def _records(
    source: Source,
    csv_types: Mapping[str, frozenset[str]] | None,
    digest: Any,
) -> Iterator[Record]:
    prefix = f"{source.member} " if source.member else ""
    if not source.fmt:
        raise InputError(
            source.problem or f"cannot tell the format of {source.label}", hint=source.problem_hint
        )
    with _reading(source.label), source.open() as content:
        fh = content
        if digest is not None:
            fh = cast(IO[bytes], io.BufferedReader(_Hashing(content, digest), _BLOCK))
        if source.fmt == "json":
            reader = read_json_array(fh)
        elif source.fmt == "csv":
            reader = read_csv(fh, csv_types)
        elif source.fmt not in FORMATS:
            from lake_client import exports  # it reads Records

            reader = exports.read(source.fmt, fh)
        else:
            reader = read_jsonl(fh)
        for rec in reader:
            yield Record(prefix + rec.ref, rec.raw) if prefix else rec


class _Hashing(io.RawIOBase):
    """A stream that hashes what is read through it."""

    def __init__(self, inner: IO[bytes], digest: Any) -> None:
        self._inner = inner
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self._digest.update(data)
        return len(data)


def read_jsonl(fh: IO[bytes]) -> Iterator[Record]:
    """One record per non-blank line; a line is passed on even when it is not valid JSON."""
    for n, line in enumerate(fh, start=1):
        line = line.rstrip(b"\r\n")
        if n == 1:
            line = line.removeprefix(_BOM)
        if line.strip():
            yield Record(f"line {n}", line)


_STRUCTURE = re.compile(rb'[\[\]{},"]')
_IN_STRING = re.compile(rb'["\\]')


class _Window:
    """The part of a stream not yet handed out, read a block at a time."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.data = b""
        self.base = 0  # offset in the stream of data[0]
        self.eof = False

    def more(self, keep: int) -> int:
        """Drop data before `keep` and read a block: returns how far indices moved, -1 at the
        end of the stream."""
        if self.eof:
            return -1
        block = self.fh.read(_BLOCK)
        if not block:
            self.eof = True
            return -1
        self.data = self.data[keep:] + block
        self.base += keep
        return keep

    def skip_ws(self, i: int) -> int:
        while True:
            n = len(self.data)
            while i < n and self.data[i] in _WS:
                i += 1
            if i < n:
                return i
            moved = self.more(i)
            if moved < 0:
                return i
            i -= moved

    def value(self, start: int) -> tuple[int, int]:
        """(start, end) of the array element at `start`: end is the index of the comma or
        bracket after it (len(data) when the stream ends first). Only strings and brackets
        matter, so an element that is not valid JSON is still found whole."""
        depth = 0
        in_string = False
        i = start
        while True:
            m = (_IN_STRING if in_string else _STRUCTURE).search(self.data, i)
            if m is None or (in_string and m.group() == b"\\" and m.end() >= len(self.data)):
                resume = len(self.data) if m is None else m.start()
                moved = self.more(start)
                if moved < 0:
                    return start, len(self.data)
                start -= moved
                i = resume - moved
                continue
            j = m.start()
            c = m.group()
            i = j + 1
            if in_string:
                if c == b"\\":
                    i = j + 2
                else:
                    in_string = False
            elif c == b'"':
                in_string = True
            elif c in (b"[", b"{"):
                depth += 1
            elif c in (b"]", b"}"):
                if depth == 0:
                    return start, j
                depth -= 1
            elif depth == 0:  # a comma between elements
                return start, j


def read_json_array(fh: IO[bytes]) -> Iterator[Record]:
    """The elements of one top-level JSON array, each as its own exact text, streamed."""
    w = _Window(fh)
    while len(w.data) < len(_BOM) and w.more(0) >= 0:
        pass
    if w.data.startswith(_BOM):
        w.data = w.data[3:]
        w.base = 3
    i = w.skip_ws(0)
    if i >= len(w.data) or w.data[i : i + 1] != b"[":
        raise InputError(
            "the file is not a JSON array",
            hint="a .json file must hold one array of records; use .jsonl for one record a line",
        )
    i = w.skip_ws(i + 1)
    index = 0
    if w.data[i : i + 1] != b"]":
        while True:
            if i >= len(w.data):
                raise InputError("the JSON array is not closed: the file ends inside it")
            start, end = w.value(i)
            raw = w.data[start:end].rstrip(_WS)
            if end >= len(w.data):
                raise InputError("the JSON array is not closed: the file ends inside it")
            if not raw:
                raise InputError(f"the JSON array is malformed at byte {w.base + start}")
            yield Record(f"[{index}]", raw)
            index += 1
            if w.data[end : end + 1] == b"]":
                i = end
                break
            i = w.skip_ws(end + 1)
    if w.skip_ws(i + 1) < len(w.data):
        raise InputError("there is text after the end of the JSON array")


# -- CSV ------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def csv_types(json_schema: Mapping[str, Any] | None) -> dict[str, frozenset[str]]:
    """Column name -> the JSON types the dataset's schema allows for that top-level field."""
    out: dict[str, frozenset[str]] = {}
    properties = (json_schema or {}).get("properties")
    if not isinstance(properties, Mapping):
        return out
    for name, sub in properties.items():
        declared = sub.get("type") if isinstance(sub, Mapping) else None
        if isinstance(declared, str):
            out[name] = frozenset([declared])
        elif isinstance(declared, list):
            out[name] = frozenset(t for t in declared if isinstance(t, str))
    return out


def csv_value(text: str, types: frozenset[str] = frozenset()) -> Any:
    """A CSV cell as a JSON value. A cell is text: it becomes a number or a boolean only where
    the schema declares the field so (and not also a string), so "01234" or a phone number
    stay as written. An empty cell is null."""
    if text == "":
        return None
    if not types or "string" in types:
        return text
    if ("integer" in types or "number" in types) and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else text
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text  # the schema will say what is wrong with it


def read_csv(fh: IO[bytes], types: Mapping[str, frozenset[str]] | None = None) -> Iterator[Record]:
    """One record per row, keyed by the header row; cells typed by `types` (csv_types)."""
    types = types or {}
    try:
        stream = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or any(h == "" for h in header):
            raise InputError("the CSV header has empty or repeated column names")
        column_types = [types.get(h, frozenset()) for h in header]
        for row in reader:
            if not row:
                continue
            ref = f"line {reader.line_num}"
            if len(row) != len(header):
                # Passed on as a record the schema will reject, not dropped.
                doc: dict[str, Any] = {
                    "_csv_error": f"{len(row)} cells for {len(header)} columns",
                    "_csv_row": row,
                }
            else:
                doc = {
                    h: csv_value(v, t) for h, v, t in zip(header, row, column_types, strict=True)
                }
            yield Record(ref, orjson.dumps(doc))
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV file is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise InputError(f"the CSV file is malformed: {exc}") from None


def json_bytes(item: Any) -> bytes:
    """A Python value as JSON text: bytes and str are taken as JSON already."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    try:
        return orjson.dumps(item)
    except TypeError as exc:
        raise InputError(f"a record cannot be serialised as JSON: {exc}") from None


def from_objects(items: Iterable[Any]) -> Iterator[Record]:
    """Records from Python values (dicts, or JSON text as str/bytes); Records pass through."""
    for i, item in enumerate(items):
        yield item if isinstance(item, Record) else Record(f"record {i}", json_bytes(item))
