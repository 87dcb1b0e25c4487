"""Reading the files of source formats (lake.source_formats()) as source records: the elements of
an array under a top-level key of one large JSON object (Google Takeout's Records.json,
Semantic Location History), or the elements of one tag of an XML file (Apple Health's
export.xml), each as JSON text. Both stream: an incremental JSON parser (ijson) and an
iterative XML parser that clears each element once read (defusedxml, which refuses entity
declarations and external references), so a file of hundreds of MB or more is never held in
memory. The database converts the source records into the dataset's records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, cast

import defusedxml.ElementTree as safe_et
import ijson
import orjson
from defusedxml import DefusedXmlException

from lake_client.errors import InputError
from lake_client.records import Record

READERS = ("json", "jsonl", "items:<key>", "xml:<tag>")


def is_reader(fmt: str) -> bool:
    """Whether `fmt` is a reader of a source format that this module reads."""
    kind, _, arg = fmt.partition(":")
    return kind in ("items", "xml") and bool(arg)


def read(fmt: str, fh: IO[bytes]) -> Iterator[Record]:
    """The source records of a stream read as `fmt` (items:<key> or xml:<tag>)."""
    kind, _, arg = fmt.partition(":")
    if kind == "items":
        return read_items(fh, arg)
    if kind == "xml":
        return read_xml(fh, arg)
    raise InputError(f"unknown reader {fmt!r}", hint=f"readers: {', '.join(READERS)}")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits: the database judges it
        return json.dumps(value).encode()


def read_items(fh: IO[bytes], key: str) -> Iterator[Record]:
    """The elements of the array `key` of the top-level object ({"locations": [...]}), or of
    a top-level array, streamed. Numbers become floats or integers as written."""
    head = bytes(cast(Any, fh).peek(64)[:64]).lstrip(b"\xef\xbb\xbf \t\r\n")
    prefix = "item" if head.startswith(b"[") else f"{key}.item"
    ref = "[{}]" if prefix == "item" else key + "[{}]"
    try:
        for n, item in enumerate(ijson.items(fh, prefix, use_float=True)):
            yield Record(ref.format(n), _dumps(item))
    except ijson.JSONError as exc:
        raise InputError(
            f"the JSON is malformed or cut off: {exc}",
            hint=f"the file should be one JSON object with an array {key!r}",
        ) from None


def read_xml(fh: IO[bytes], tag: str) -> Iterator[Record]:
    """Every <tag> element: its attributes as an object, its <MetadataEntry key= value=>
    children as "metadata". Elements are cleared once read, and so are the root's finished
    children, so memory stays flat whatever the file's size."""
    depth = 0
    root: Any = None
    n = 0
    try:
        for event, elem in safe_et.iterparse(fh, events=("start", "end")):
            if event == "start":
                if root is None:
                    root = elem
                depth += 1
                continue
            depth -= 1
            if elem.tag == tag:
                doc: dict[str, Any] = dict(elem.attrib)
                meta = {
                    m.get("key"): m.get("value")
                    for m in elem
                    if m.tag == "MetadataEntry" and m.get("key") is not None
                }
                if meta:
                    doc["metadata"] = meta
                n += 1
                yield Record(f"<{tag}> {n}", orjson.dumps(doc))
            if depth == 1:  # a child of the root is done: let it go
                root.clear()
    except DefusedXmlException as exc:
        raise InputError(
            f"the XML file is refused: {exc}",
            hint="entity declarations and external references are not read (XML bombs)",
        ) from None
    except safe_et.ParseError as exc:
        raise InputError(f"the XML is malformed or cut off: {exc}") from None
