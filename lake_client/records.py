"""Reading input files as records: JSON Lines, a JSON array, or CSV.

A record is passed on as the exact bytes read (plus a reference such as "line 17") so that the
database, not the client, judges it: malformed lines are quarantined with their raw bytes
rather than dropped or "fixed" here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from lake_client.errors import InputError

FORMATS = ("jsonl", "json", "csv")


@dataclass(frozen=True, slots=True)
class Record:
    ref: str  # where it came from, e.g. "line 17" or "[3]"
    raw: bytes  # the record's JSON text exactly as read


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise InputError(
                f"unknown format {explicit!r}", hint=f"use one of {', '.join(FORMATS)}"
            )
        return explicit
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        # A .json file may hold one array, or (commonly) JSON Lines.
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            return "json"
        if head.startswith(b"{") or not head:
            return "jsonl"
        raise InputError(
            f"{path.name} is not JSON: it starts with {head[:20]!r}",
            hint="a .json file holds one array of records, or one record a line",
        )
    raise InputError(
        f"cannot tell the format of {path.name}",
        hint="name it .jsonl, .json or .csv, or pass --format jsonl|json|csv",
    )


def read_jsonl(fh: IO[bytes]) -> Iterator[Record]:
    """One record per non-blank line; a line is passed on even when it is not valid JSON."""
    for n, line in enumerate(fh, start=1):
        line = line.rstrip(b"\r\n")
        if n == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if line.strip():
            yield Record(f"line {n}", line)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _scan_value_end(text: str, pos: int) -> int:
    """End of the JSON value starting at pos, found without recursion (for values nested too
    deeply for the json module). Only brackets and strings matter."""
    depth = 0
    in_string = False
    i = pos
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0:  # the end of the enclosing array
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch == "," and depth == 0:
            return i
        i += 1
    return i


def read_json_array(data: bytes) -> Iterator[Record]:
    """The elements of one top-level JSON array, each as its own exact text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the file is not UTF-8 text: {exc}") from None
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise InputError(
            "the file is not a JSON array",
            hint="a .json file must hold one array of records; use .jsonl for one record a line",
        )
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, pos + 1)
    index = 0
    if pos < len(text) and text[pos] == "]":
        return
    while pos < len(text):
        try:
            _, end = decoder.raw_decode(text, pos)
        except RecursionError:
            end = _scan_value_end(text, pos)
        except json.JSONDecodeError:
            end = _scan_value_end(text, pos)
            if end == pos:
                raise InputError(f"the JSON array is malformed at character {pos}") from None
        yield Record(f"[{index}]", text[pos:end].encode())
        index += 1
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos >= len(text):
            break
        elif text[pos] == "]":
            if text[_skip_ws(text, pos + 1) :].strip():
                raise InputError("there is text after the end of the JSON array")
            return
        else:
            raise InputError(f"the JSON array is malformed at character {pos}")
    raise InputError("the JSON array is not closed: the file ends inside it")


def _csv_value(text: str) -> Any:
    """CSV cells are text; numbers, true/false and empty cells are given their JSON types so a
    schema can check them."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def read_csv(fh: IO[bytes]) -> Iterator[Record]:
    """One record per row, keyed by the header row."""
    try:
        stream = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or any(h == "" for h in header):
            raise InputError("the CSV header has empty or repeated column names")
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
                doc = {k: _csv_value(v) for k, v in zip(header, row, strict=True)}
            yield Record(ref, orjson.dumps(doc))
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV file is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise InputError(f"the CSV file is malformed: {exc}") from None


def read_file(path: Path, fmt: str | None = None) -> Iterator[Record]:
    """The records of a file. A JSON array or CSV file is read whole before the first record is
    handed out, so a file that is malformed near its end fails before anything is written;
    JSON Lines stream (a bad line is a bad record, not a bad file)."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    kind = detect_format(path, fmt)
    if kind == "json":
        return iter(list(read_json_array(path.read_bytes())))
    if kind == "csv":
        with path.open("rb") as fh:
            return iter(list(read_csv(fh)))
    return _stream_jsonl(path)


def _stream_jsonl(path: Path) -> Iterator[Record]:
    with path.open("rb") as fh:
        yield from read_jsonl(fh)


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
