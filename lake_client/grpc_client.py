"""A Python client of the lake's gRPC service (`lake grpc`), with the local client's result types
(lake_client.client: IngestSummary, BatchResult, ReasonCount, rows as dicts) and its errors
(lake_client.errors, from the SQLSTATE the service sends).

    >>> with GrpcLake("127.0.0.1:50051", api_key="lake_…") as lake:
    ...     summary = lake.ingest("location_history", records)
    ...     rows = list(lake.query("location_history", from_time="2026-11-01T00:00:00Z"))

`channel()` is the stub factory's channel: it carries the service config that retries the
idempotent methods (3 attempts, exponential from 1 s, on UNAVAILABLE) and gives every call but
the streams Ingest and Changes the gateway's 30 s deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import orjson
from opentelemetry import propagate

from lake_client import errors
from lake_client.config import load_settings
from lake_client.copy_ingest import BatchResult, IngestSummary, ReasonCount
from lake_client.lakepb import lake_pb2, lake_pb2_grpc
from lake_client.session import Row

SERVICE = "datapunk.lake.v1.Lake"
MAX_BATCH = 1000
# Safe to try again: reads, and Ingest, whose batches the lake recognises by their ids.
IDEMPOTENT = ("Ingest", "Query", "Changes", "ListQuarantine", "Health")
_RETRY = {
    "maxAttempts": 3,
    "initialBackoff": "1s",
    "maxBackoff": "4s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [
                {"service": SERVICE, "method": m} for m in ("Query", "ListQuarantine", "Health")
            ],
            "retryPolicy": _RETRY,
            "timeout": "30s",
        },
        # Streams that last as long as their data: no deadline of their own (each batch's
        # statements are still capped by the server).
        {
            "name": [{"service": SERVICE, "method": m} for m in ("Ingest", "Changes")],
            "retryPolicy": _RETRY,
        },
        {
            "name": [
                {"service": SERVICE, "method": m}
                for m in ("CreateDataset", "ReleaseQuarantine", "DiscardQuarantine")
            ],
            "timeout": "30s",
        },
    ]
}

_CODES: dict[grpc.StatusCode, type[errors.LakeError]] = {
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthenticationFailed,
    grpc.StatusCode.PERMISSION_DENIED: errors.IdentityError,
    grpc.StatusCode.UNAVAILABLE: errors.ConnectionFailed,
    grpc.StatusCode.NOT_FOUND: errors.UnknownDataset,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InputError,
}


class DeadlineExceeded(errors.LakeError):
    """The call's deadline passed; the service cancelled its statements."""


def channel(
    target: str,
    *,
    ca_file: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
    insecure: bool = False,
) -> grpc.Channel:
    """A channel to `lake grpc` with the service config: TLS, the server verified against
    ``ca_file`` (default: the lake's CA, LAKE_HOME/tls/ca.crt) and its name against ``target``'s
    host; ``client_cert`` (certificate and key files) for a server that asks for one (mTLS).
    Plaintext only with insecure=True."""
    options = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ]
    if insecure:
        return grpc.insecure_channel(target, options=options)
    ca = ca_file if ca_file is not None else load_settings().ca_file
    try:
        roots = ca.read_bytes()
        cert = key = None
        if client_cert is not None:
            cert, key = client_cert[0].read_bytes(), client_cert[1].read_bytes()
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot read the gRPC channel's TLS files: {exc}",
            hint="run `lake up` (it creates the lake's CA), or name the CA with ca_file",
        ) from None
    credentials = grpc.ssl_channel_credentials(roots, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(target, credentials, options=options)


def stub(target: str, **tls: Any) -> lake_pb2_grpc.LakeStub:
    """The stub factory: a LakeStub on channel(target, **tls)."""
    return lake_pb2_grpc.LakeStub(channel(target, **tls))  # type: ignore[no-untyped-call]


def error_of(exc: grpc.RpcError) -> errors.LakeError:
    """The lake's error for a failed call: by the SQLSTATE in its trailing metadata, else by its
    status code."""
    trailing = dict(exc.trailing_metadata() or ())
    state = trailing.get("lake-sqlstate")
    hint_bytes = trailing.get("lake-hint-bin")
    hint = hint_bytes.decode() if isinstance(hint_bytes, bytes) else None
    message = str(exc.details())
    code = exc.code()
    if state:
        if state == "57014":
            return DeadlineExceeded(message, hint=hint, sqlstate=state)
        return errors.from_sqlstate(str(state), message, hint)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(message, hint=hint)
    return _CODES.get(code, errors.LakeError)(message, hint=hint)


def _row_of_change(c: Any) -> Row:
    return {
        "id": c.id,
        "dataset": c.dataset,
        "user_id": c.user_id or None,
        "record_id": c.record_id or None,
        "op": c.op,
        "before": json.loads(c.before) if c.before else None,
        "after": json.loads(c.after) if c.after else None,
        "source": json.loads(c.source),
        "ts_ms": c.ts_ms,
    }


class GrpcLake:
    """The lake through its gRPC service, as the principal of `api_key`, or (api_key None) as the
    service of `client_cert` for a server that verifies client certificates (`lake grpc
    --client-ca`); a service with `act_for` acts for that user."""

    def __init__(
        self,
        target: str,
        api_key: str | None,
        *,
        act_for: str | None = None,
        ca_file: Path | None = None,
        client_cert: tuple[Path, Path] | None = None,
        insecure: bool = False,
        timeout: float | None = 30.0,
    ) -> None:
        self._channel = channel(target, ca_file=ca_file, client_cert=client_cert, insecure=insecure)
        self.stub = lake_pb2_grpc.LakeStub(self._channel)  # type: ignore[no-untyped-call]
        self.metadata: tuple[tuple[str, str], ...] = ()
        if api_key is not None:
            self.metadata += (("authorization", f"Bearer {api_key}"),)
        if act_for:
            self.metadata += (("x-lake-user", act_for),)
        self.timeout = timeout

    def __enter__(self) -> GrpcLake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """The call's metadata: the key, the user acted for, and the caller's trace (W3C
        traceparent) when it is in one, which `lake grpc` continues."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return self.metadata + tuple(carrier.items())

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self.stub, method)(
                request, metadata=self._metadata(), timeout=timeout or self.timeout
            )
        except grpc.RpcError as exc:
            raise error_of(exc) from exc

    def _stream_in(self, batches: Iterator[Any], timeout: float | None) -> Any:
        """An Ingest call: no deadline unless given (it lasts as long as its records)."""
        try:
            return self.stub.Ingest(batches, metadata=self._metadata(), timeout=timeout)
        except grpc.RpcError as exc:
            raise error_of(exc) from exc

    def _stream(self, method: str, request: Any, timeout: float | None) -> Iterator[Any]:
        call = getattr(self.stub, method)(request, metadata=self._metadata(), timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise error_of(exc) from exc
        finally:
            call.cancel()  # a caller that stops reading ends the call (no-op once it ended)

    def health(self) -> Row:
        reply = self._call("Health", lake_pb2.HealthRequest())
        return {"status": reply.status, "postgres": reply.postgres, "redis": reply.redis}

    def create_dataset(self, name: str, json_schema: dict[str, Any], **options: Any) -> Row:
        reply = self._call(
            "CreateDataset",
            lake_pb2.CreateDatasetRequest(
                name=name, json_schema=json.dumps(json_schema), options=json.dumps(options)
            ),
        )
        return {"name": reply.name, "schema_version": reply.schema_version}

    def ingest(
        self,
        dataset: str,
        records: Iterable[Any],
        *,
        batch_size: int = MAX_BATCH,
        origin: str | None = None,
        batch_namespace: uuid.UUID | None = None,
        timeout: float | None = None,
        streams: int = 1,
    ) -> IngestSummary:
        """Stream records (dicts, or JSON text as str or bytes) in batches of `batch_size` (at
        most 1000), one batch in memory at a time. With `batch_namespace`, batch i's id is
        uuid5(namespace, i): sending the same records again stores nothing twice. The service
        reports totals, so the summary holds one BatchResult for the whole stream (its batch_id
        the nil UUID). `streams` calls side by side take the batches in turn (each on a
        connection of the server's, as `lake ingest --jobs` loads on several sessions)."""
        if not 0 < batch_size <= MAX_BATCH:
            raise errors.InputError(f"batch_size must be 1 to {MAX_BATCH}")
        if streams < 1:
            raise errors.InputError("streams must be at least 1")

        def batches() -> Iterator[Any]:
            chunk: list[bytes] = []
            n = 0

            def flush() -> Any:
                bid = uuid.uuid5(batch_namespace, str(n)) if batch_namespace else uuid.uuid4()
                return lake_pb2.IngestBatch(
                    dataset=dataset, batch_id=str(bid), records=chunk, origin=origin or ""
                )

            for record in records:
                if isinstance(record, str):
                    chunk.append(record.encode("utf-8", "surrogateescape"))
                elif isinstance(record, bytes):
                    chunk.append(record)
                else:
                    chunk.append(orjson.dumps(record))
                if len(chunk) == batch_size:
                    yield flush()
                    chunk, n = [], n + 1
            if chunk:
                yield flush()

        started = time.monotonic()
        replies = (
            [self._stream_in(batches(), timeout)]
            if streams == 1
            else self._ingest_streams(batches(), streams, timeout)
        )
        reasons: dict[str, ReasonCount] = {}
        for reply in replies:
            for r in reply.reasons:
                seen = reasons.setdefault(r.rule, ReasonCount(r.rule, 0, r.example))
                seen.records += r.records
        total = BatchResult(
            batch_id=uuid.UUID(int=0),
            received=sum(r.received for r in replies),
            accepted=sum(r.accepted for r in replies),
            quarantined=sum(r.quarantined for r in replies),
            archived=sum(r.archived for r in replies),
        )
        return IngestSummary(
            dataset=dataset,
            batches=[total],
            reasons=sorted(reasons.values(), key=lambda r: r.rule),
            seconds=time.monotonic() - started,
            jobs=streams,
        )

    def _ingest_streams(
        self, batches: Iterator[Any], streams: int, timeout: float | None
    ) -> list[Any]:
        """Ingest calls side by side, each taking the next batch from one bounded queue (so at
        most 2 per stream wait in memory); the first failure stops them all and is raised."""
        pending: queue.Queue[Any] = queue.Queue(maxsize=2 * streams)
        stop = threading.Event()
        replies: list[Any] = []
        failures: list[errors.LakeError] = []

        def feed() -> Iterator[Any]:
            while True:
                try:
                    item = pending.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                if item is None:
                    return
                yield item

        def run() -> None:
            try:
                replies.append(self._stream_in(feed(), timeout))
            except errors.LakeError as exc:
                failures.append(exc)
                stop.set()

        # In copies of this thread's context: each call carries the caller's trace.
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
            for _ in range(streams)
        ]
        for thread in threads:
            thread.start()

        def put(item: Any) -> None:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    pending.put(item, timeout=0.1)
                    return

        try:
            for batch in batches:
                put(batch)
                if stop.is_set():
                    break
        finally:
            for _ in threads:
                put(None)
            stop.set()  # a stream that has not seen its None ends at once
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]
        return replies

    def query(
        self,
        dataset: str,
        *,
        from_time: datetime | str | None = None,
        to_time: datetime | str | None = None,
        page_token: str | None = None,
        limit: int = 0,
        timeout: float | None = None,
    ) -> Iterator[Row]:
        """The caller's records (id, ts, doc, user_id, page_token), oldest first."""

        def text(t: datetime | str | None) -> str:
            return t.isoformat() if isinstance(t, datetime) else (t or "")

        request = lake_pb2.QueryRequest(
            dataset=dataset,
            from_time=text(from_time),
            to_time=text(to_time),
            page_token=page_token or "",
            limit=limit,
        )
        for page in self._stream("Query", request, timeout or self.timeout):
            for r in page.records:
                yield {
                    "id": r.id,
                    "ts": datetime.fromisoformat(r.ts),
                    "doc": json.loads(r.doc),
                    "user_id": r.user_id,
                    "page_token": r.page_token,
                }

    def changes(
        self, since: int = 0, *, follow: bool = False, timeout: float | None = None
    ) -> Iterator[Row]:
        """Committed changes to the caller's data after change id `since`, in commit order (the
        rows of Lake.changes); with follow, new ones too until the timeout."""
        request = lake_pb2.ChangesRequest(since=since, follow=follow)
        for c in self._stream("Changes", request, timeout):
            yield _row_of_change(c)

    def _item(self, item: Any) -> Row:
        return {
            "id": item.id,
            "dataset": item.dataset,
            "user_id": item.user_id or None,
            "status": item.status,
            "reasons": json.loads(item.reasons) if item.reasons else None,
            "doc": json.loads(item.doc) if item.doc else None,
            "raw": item.raw or None,
            "outcome": item.outcome or None,
        }

    def quarantine(
        self, dataset: str | None = None, status: str | None = "pending", limit: int = 100
    ) -> list[Row]:
        request = lake_pb2.ListQuarantineRequest(
            dataset=dataset or "", status=status or "", limit=limit
        )
        return [self._item(i) for i in self._stream("ListQuarantine", request, self.timeout)]

    def quarantine_release(
        self, item_id: int, corrected: dict[str, Any] | None = None, note: str | None = None
    ) -> Row:
        request = lake_pb2.ReleaseQuarantineRequest(
            id=item_id,
            corrected="" if corrected is None else json.dumps(corrected),
            note=note or "",
        )
        return self._item(self._call("ReleaseQuarantine", request))

    def quarantine_discard(self, item_id: int, reason: str) -> Row:
        request = lake_pb2.DiscardQuarantineRequest(id=item_id, reason=reason)
        return self._item(self._call("DiscardQuarantine", request))
