"""`lake grpc`: the lake's gRPC service (proto/datapunk/lake/v1/lake.proto), with the standard
health service (grpc.health.v1) and server reflection, so that grpcurl works.

Ingest stores each batch as `lake ingest` does (COPY into the dataset's inbox, lake.ingest_raw
for what COPY refuses), the batches that have arrived together: a thread reads the call's
batches into a short queue while the call's thread stores the previous ones, up to 10 000
records of them in one transaction and one COPY (lake_client.copy_ingest.store_batches), each
batch with its own id, counts and idempotency.

Every call is an ordinary lake session: it takes a pooled connection and, in one transaction,
establishes the caller's identity for that transaction only, then lake.act_as for the user a
service names in `x-lake-user`, does its work and commits. The identity is the service whose
certificate the call's TLS handshake verified (`client_ca`: lake.authenticate_peer_cert with its
serial and issuer, which needs the login to be a member of lake_door), or else the API key of
the `authorization` metadata (lake.authenticate); a call that sends both is refused (one call,
one identity). A pooled connection therefore never carries one call's identity into another;
row-level security, validation, quarantine, audit and capture decide as they do for SQL.

The server logs in with `dsn`, a role of lake_service (not an administrator: then lake.act_as
applies the rules for services), and of lake_door when it verifies client certificates.
Administrator methods (CreateDataset, the quarantine) run on `admin_dsn`, a role of lake_admin
(and of lake_door for certificates), for callers whose principal is one of `admins`.

Each call is a span (OpenTelemetry's gRPC interceptor) that continues the caller's trace when
its metadata carries a ``traceparent`` (GrpcLake sends it); Ingest's batches are its children.

Deadlines: each call's statements get statement_timeout = the caller's time left (at most
`max_seconds`), and a call that ends early (deadline, cancel) cancels its running statement.

TLS by default, with the lake's ``grpc`` certificate (LAKE_HOME/tls): credentials that gRPC asks
for again at each handshake (``dynamic_ssl_server_credentials``), so a renewal by the database's
job is served to new connections while open ones go on. With ``client_ca`` it asks each client
for a certificate signed by that CA (mTLS for a gateway). Plaintext only with ``insecure=True``
(`lake grpc --insecure`), an explicit opt-out for loopback experiments.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import queue
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import grpc
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lake_client import certs, copy_ingest, errors
from lake_client.lakepb import lake_pb2, lake_pb2_grpc
from lake_client.queries import sql
from lake_client.records import Record
from lake_client.server import check_postgres, check_redis
from lake_client.session import Row
from lake_client.transport import ServerFiles, check_grpc_tls13_only

SERVICE = "datapunk.lake.v1.Lake"
MAX_BATCH = 1000
# Ingest stores the batches that have arrived, up to this many records, in one transaction (one
# COPY): the per-statement and per-commit work in the database is then that of one batch of
# `lake ingest` (10 000 records). At most GROUP_BATCHES batches wait unread.
GROUP_RECORDS = 10_000
GROUP_BATCHES = 10
# Query sends its records in pages (RecordPage) of at most PAGE_ROWS, cut at about PAGE_BYTES
# of documents: far below gRPC's 4 MB message limit, unless one record alone is larger.
PAGE_ROWS = 1000
PAGE_BYTES = 1 << 20
# Changes: how long one transaction (one identity) follows the log before a fresh one, and how
# often it looks for new changes.
FOLLOW_ROUND_S = 10.0
FOLLOW_POLL_S = 0.25
APPLICATION_NAME = "lake-grpc"
# A Query on the reader starts at once: its identity token need not live long.
READ_TOKEN_TTL = "1 minute"

Conn = psycopg.Connection[Row]

# The gRPC status of each lake error (lake_client.errors); SQLSTATEs of PostgreSQL's own below.
_STATUS: list[tuple[type[errors.LakeError], grpc.StatusCode]] = [
    (errors.AuthenticationFailed, grpc.StatusCode.UNAUTHENTICATED),
    (errors.IdentityError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.UnknownDataset, grpc.StatusCode.NOT_FOUND),
    (errors.DatasetExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.DatasetError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.QuarantineError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.BatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConnectionFailed, grpc.StatusCode.UNAVAILABLE),
]
_SQLSTATE_STATUS = {
    "LK010": grpc.StatusCode.UNAUTHENTICATED,  # no lake user in the session
    "LK020": grpc.StatusCode.NOT_FOUND,  # no such quarantine item
    "42501": grpc.StatusCode.PERMISSION_DENIED,
    "42P01": grpc.StatusCode.NOT_FOUND,  # no such dataset table
    "57014": grpc.StatusCode.DEADLINE_EXCEEDED,  # statement_timeout, or cancelled
    "40001": grpc.StatusCode.ABORTED,
    "40P01": grpc.StatusCode.ABORTED,
}


def status_of(err: errors.LakeError) -> grpc.StatusCode:
    """The gRPC status code for a lake error."""
    state = err.sqlstate or ""
    if state in _SQLSTATE_STATUS:
        return _SQLSTATE_STATUS[state]
    if state.startswith("22"):  # data exceptions: invalid JSON, a bad timestamp...
        return grpc.StatusCode.INVALID_ARGUMENT
    for cls, code in _STATUS:
        if isinstance(err, cls):
            return code
    return grpc.StatusCode.INTERNAL


class _Abort(Exception):
    """A refusal decided here (not by the database): its status and message."""

    def __init__(self, code: grpc.StatusCode, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.hint = code, hint


def _hung_up(conn: Conn) -> bool:
    """Whether the server spoke to an idle connection: it ended it (a restart, a failover: the
    next connection reaches the new primary), or sent a notice; either way it is not reused."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class _Pool:
    """A few connections with the server's settings. Each is handed out between transactions and
    put back after its transaction ended (a broken one, or one the server hung up, is dropped)."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[Conn] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def get(self) -> Conn:
        self._slots.acquire()
        try:
            with contextlib.suppress(queue.Empty):
                while True:
                    conn = self._idle.get_nowait()
                    if not conn.closed and not conn.broken and not _hung_up(conn):
                        return conn
                    conn.close()
            return psycopg.connect(
                self.dsn, row_factory=dict_row, application_name=APPLICATION_NAME
            )
        except psycopg.OperationalError as exc:
            self._slots.release()
            raise errors.from_psycopg(exc, connecting=True) from exc
        except BaseException:
            self._slots.release()
            raise

    def put(self, conn: Conn) -> None:
        try:
            if conn.closed or conn.broken:
                conn.close()
                return
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            self._idle.put(conn)
        except psycopg.Error:
            conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._idle.get_nowait().close()


@dataclass
class _Call:
    """One RPC's hold on a pooled connection: the context's end (deadline, cancel) cancels the
    statement running on it, but only while the call still holds it."""

    conn: Conn
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: bool = True

    def cancel(self) -> None:
        with self.lock:
            if self.held:
                with contextlib.suppress(psycopg.Error):
                    self.conn.cancel_safe(timeout=5)


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    return {k.lower(): v for k, v in context.invocation_metadata() if isinstance(v, str)}


def _peer_cert(context: grpc.ServicerContext) -> tuple[int, str] | None:
    """The serial and issuer (in sslinfo's ssl_issuer_dn() form, as lake.service_certs keeps
    it) of the client certificate that this call's TLS handshake verified (`--client-ca`), or
    None when the caller presented none."""
    pems = context.auth_context().get("x509_pem_cert")
    return _cert_names(pems[0]) if pems else None


@functools.lru_cache(maxsize=256)
def _cert_names(pem: bytes) -> tuple[int, str]:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.serial_number, str(certs.rules().openssl_dn(cert.issuer))


def _json(text: str, what: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{what} is not JSON: {exc}") from exc


def _time(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{what} is not RFC 3339: {text!r}") from exc


def page_token(ts: datetime, record_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts.isoformat(), record_id]).encode()).decode()


def _after(token: str) -> tuple[datetime | None, int | None]:
    if not token:
        return None, None
    try:
        ts, record_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(ts), int(record_id)
    except (ValueError, TypeError) as exc:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token") from exc


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _batch_id(batch: Any) -> uuid.UUID:
    if len(batch.records) > MAX_BATCH:
        raise _Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"a batch holds at most {MAX_BATCH} records, not {len(batch.records)}",
        )
    try:
        return uuid.UUID(batch.batch_id)
    except ValueError as exc:
        raise _Abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"batch_id must be a UUID (the batch's idempotency key), not {batch.batch_id!r}",
        ) from exc


class _Incoming:
    """An Ingest call's batches, read by a thread of their own into a short queue while the
    call's thread stores the previous ones, and handed out in groups: what has arrived, up to
    GROUP_RECORDS records of one dataset and origin, is stored in one transaction (one COPY).
    At most GROUP_BATCHES wait in the queue, so memory does not grow with the stream (gRPC's
    flow control holds the sender back)."""

    _END = object()

    def __init__(self, request_iterator: Iterator[Any]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=GROUP_BATCHES)
        self._stop = threading.Event()
        self._held: Any = None  # a batch taken that belongs to the next group
        self._thread = threading.Thread(target=self._read, args=(request_iterator,), daemon=True)
        self._thread.start()

    def _read(self, request_iterator: Iterator[Any]) -> None:
        try:
            for batch in request_iterator:
                if not self._put(batch):
                    return
            self._put(self._END)
        except BaseException as exc:  # the call ended (cancelled, deadline): handed over
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def _take(self, wait: bool) -> Any:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        item = self._queue.get() if wait else self._queue.get_nowait()
        if isinstance(item, BaseException):
            raise item
        return item

    def groups(self) -> Iterator[list[Any]]:
        while (first := self._take(wait=True)) is not self._END:
            group, records = [first], len(first.records)
            while records < GROUP_RECORDS:
                try:
                    item = self._take(wait=False)
                except queue.Empty:
                    break
                if item is self._END or (item.dataset, item.origin) != (
                    first.dataset,
                    first.origin,
                ):
                    self._held = item
                    break
                group.append(item)
                records += len(item.records)
            yield group

    def close(self) -> None:
        self._stop.set()


class LakeService(lake_pb2_grpc.LakeServicer):
    def __init__(
        self,
        dsn: str,
        *,
        admin_dsn: str | None,
        admins: frozenset[str],
        redis_url: str,
        pool_size: int,
        max_seconds: float,
        read_dsn: str | None = None,
    ) -> None:
        self.pool = _Pool(dsn, pool_size)
        self.admin_pool = _Pool(admin_dsn, pool_size) if admin_dsn else None
        # Query reads there when set (a hot standby, the same login as dsn), under a token of
        # the caller's identity that the primary signs (lake.identity_token).
        self.read_pool = _Pool(read_dsn, pool_size) if read_dsn else None
        self.admins = admins
        self.redis_url = redis_url
        self.max_seconds = max_seconds

    def close(self) -> None:
        self.pool.close()
        for pool in (self.admin_pool, self.read_pool):
            if pool is not None:
                pool.close()

    # -- the frame of every call -------------------------------------------------------------

    @contextlib.contextmanager
    def _session(
        self, context: grpc.ServicerContext, *, admin: bool = False, pool: _Pool | None = None
    ) -> Iterator[_Call]:
        """A pooled connection for this call (of `pool`, else the service's or the
        administrators'), given back (its transaction ended) afterwards."""
        pool = pool or (self.admin_pool if admin else self.pool)
        if pool is None:
            raise _Abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "administrator methods are not enabled on this server",
                hint="start `lake grpc` with --admin-dsn (a lake_admin login) and --admin",
            )
        call = _Call(pool.get())
        context.add_callback(call.cancel)
        try:
            yield call
        finally:
            with call.lock:
                call.held = False
            pool.put(call.conn)

    def _begin(self, conn: Conn, context: grpc.ServicerContext, *, admin: bool = False) -> str:
        """Start a transaction with the caller's deadline and identity; returns the principal."""
        self._deadline(conn, context)
        meta = _metadata(context)
        key = meta.get("authorization", "").removeprefix("Bearer ").strip()
        peer = _peer_cert(context)
        principal: Row | None
        if peer is not None:
            if key:
                raise _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "both a client certificate and an API key: a call has one identity",
                    hint="over mTLS the certificate names the service; send no authorization",
                )
            principal = self._authenticate_peer(conn, *peer)
        elif key:
            principal = conn.execute(sql("grpc_authenticate"), {"api_key": key}).fetchone()
            if principal is None or principal["principal"] is None:
                conn.commit()  # the audit entry of the failed attempt stays
                raise _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "authentication failed: the API key is not valid",
                    hint="an administrator can list, rotate or create keys (`lake keys`)",
                )
        else:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "no identity: send `authorization: Bearer lake_<id>_<secret>` metadata, or a "
                "service certificate to a server with --client-ca",
            )
        who = str(principal["principal"])
        acting = meta.get("x-lake-user")
        if admin:
            if who not in self.admins or acting:
                raise _Abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{who!r} is not an administrator of this service",
                    hint="`lake grpc --admin <principal>` names the administrators",
                )
        elif acting:
            identity = conn.execute(sql("grpc_identity")).fetchone()
            if identity is None or identity["service"] is None:
                raise _Abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "only a service (its key or certificate) may name a user in x-lake-user",
                )
            conn.execute(sql("grpc_act_as"), {"user_id": acting})
        return who

    def _deadline(self, conn: Conn, context: grpc.ServicerContext) -> None:
        """The caller's deadline, capped by the server's, for the statements of this transaction."""
        left = context.time_remaining()
        seconds = self.max_seconds if left is None else min(left, self.max_seconds)
        if seconds <= 0:
            raise _Abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline has passed")
        conn.execute(sql("grpc_deadline"), {"ms": str(max(1, int(seconds * 1000)))})

    def _read_token(self, context: grpc.ServicerContext) -> str:
        """The caller's identity, established on the primary as for any call (and audited
        there), as a short-lived token for the reader."""
        with self._session(context) as call:
            try:
                self._begin(call.conn, context)
                row = call.conn.execute(sql("identity_token"), {"ttl": READ_TOKEN_TTL}).fetchone()
                call.conn.commit()
            except psycopg.Error as exc:
                raise errors.from_psycopg(exc) from exc
        if row is None:
            raise _Abort(grpc.StatusCode.INTERNAL, "the primary made no identity token")
        return str(row["token"])

    def _begin_read(self, conn: Conn, context: grpc.ServicerContext, token: str) -> None:
        """Start a transaction on the reader with the caller's deadline and identity token."""
        self._deadline(conn, context)
        conn.execute(sql("use_identity_token"), {"token": token})

    @staticmethod
    def _authenticate_peer(conn: Conn, serial: int, issuer: str) -> Row:
        """The service of the certificate the caller's handshake verified, for this transaction
        (lake.authenticate_peer_cert; the server's login is a member of lake_door)."""
        refusals: list[str] = []

        def keep(diag: psycopg.errors.Diagnostic) -> None:
            if diag.message_primary:
                refusals.append(diag.message_primary.removeprefix("lake: "))

        conn.add_notice_handler(keep)
        try:
            principal = conn.execute(
                sql("grpc_authenticate_cert"), {"serial": serial, "issuer": issuer}
            ).fetchone()
        finally:
            conn.remove_notice_handler(keep)
        if principal is None or principal["principal"] is None:
            conn.commit()  # the audit entry of the failed attempt stays
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                refusals[-1] if refusals else "authentication failed: the certificate",
                hint="an administrator issues service certificates (`lake certs issue`)",
            )
        return principal

    def _fail(self, context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
        if isinstance(exc, _Abort):
            code, message, hint, state = exc.code, str(exc), exc.hint, None
        elif isinstance(exc, errors.LakeError):
            code, message, hint, state = status_of(exc), str(exc.args[0]), exc.hint, exc.sqlstate
        else:
            raise exc
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and not context.is_active():
            message = "deadline exceeded: the statement was cancelled"
        trailing: list[tuple[str, str | bytes]] = []
        if state:
            trailing.append(("lake-sqlstate", state))
        if hint:
            trailing.append(("lake-hint-bin", hint.encode()))
        context.set_trailing_metadata(tuple(trailing))
        context.abort(code, message)
        raise AssertionError("context.abort returns only by raising")

    def _run(
        self,
        context: grpc.ServicerContext,
        work: Callable[[Conn], Any],
        *,
        admin: bool = False,
    ) -> Any:
        """A unary call: one transaction with the caller's identity."""
        try:
            with self._session(context, admin=admin) as call:
                try:
                    self._begin(call.conn, context, admin=admin)
                    result = work(call.conn)
                    call.conn.commit()
                    return result
                except psycopg.Error as exc:
                    raise errors.from_psycopg(exc) from exc
        except (_Abort, errors.LakeError) as exc:
            self._fail(context, exc)

    # -- methods -----------------------------------------------------------------------------

    def Health(self, request: Any, context: grpc.ServicerContext) -> Any:
        problems = {
            name: problem
            for name, problem in (
                ("postgres", check_postgres(self.pool.dsn)),
                ("redis", check_redis(self.redis_url)),
            )
            if problem is not None
        }
        return lake_pb2.HealthReply(
            status="fail" if problems else "ok",
            postgres=problems.get("postgres", "ok"),
            redis=problems.get("redis", "ok"),
        )

    def CreateDataset(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work(conn: Conn) -> Any:
            params = {
                "name": request.name,
                "json_schema": Jsonb(_json(request.json_schema, "json_schema")),
                "options": Jsonb(_json(request.options, "options") or {}),
            }
            row = conn.execute(sql("create_dataset"), params).fetchone()
            assert row is not None
            return lake_pb2.Dataset(
                name=row["name"], schema_version=row["schema_version"], time_field=row["time_field"]
            )

        return self._run(context, work, admin=True)

    def Ingest(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        summary = lake_pb2.IngestSummary()
        reasons: dict[str, list[Any]] = {}
        incoming = _Incoming(request_iterator)
        try:
            with self._session(context) as call:
                conn = call.conn
                for group in incoming.groups():
                    batches = [(_batch_id(b), b) for b in group]
                    try:
                        self._begin(conn, context)
                        results = copy_ingest.store_batches(
                            conn,
                            group[0].dataset,
                            [
                                (bid, [Record(f"[{i}]", raw) for i, raw in enumerate(b.records)])
                                for bid, b in batches
                            ],
                            group[0].origin or None,
                        )
                        stored = [r.batch_id for r in results if not r.duplicate]
                        found = (
                            conn.execute(sql("batch_reasons"), {"batch_ids": stored}).fetchall()
                            if stored
                            else []
                        )
                        conn.commit()
                    except psycopg.Error as exc:
                        conn.rollback()
                        raise errors.from_psycopg(exc) from exc
                    for result in results:
                        summary.batches += 1
                        if result.duplicate:
                            summary.duplicates += 1
                            continue  # counted when it was stored
                        summary.received += result.received
                        summary.accepted += result.accepted
                        summary.quarantined += result.quarantined
                        summary.archived += result.archived
                    for r in found:
                        entry = reasons.setdefault(r["rule"], [0, r["example"]])
                        entry[0] += r["records"]
        except (_Abort, errors.LakeError) as exc:
            self._fail(context, exc)
        finally:
            incoming.close()
        for rule, (records, example) in sorted(reasons.items()):
            summary.reasons.add(rule=rule, records=records, example=_text(example))
        return summary

    def Query(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        after_ts, after_id = _after(request.page_token)
        params = {
            "from_time": _time(request.from_time, "from_time"),
            "to_time": _time(request.to_time, "to_time"),
            "after_ts": after_ts,
            "after_id": after_id,
            "limit": request.limit or None,
        }
        stmt = pgsql.SQL(sql("grpc_query")).format(dataset=pgsql.Identifier(request.dataset))
        try:
            token = self._read_token(context) if self.read_pool is not None else None
            with self._session(context, pool=self.read_pool if token else None) as call:
                try:
                    if token is None:
                        self._begin(call.conn, context)
                    else:
                        self._begin_read(call.conn, context, token)
                    # A server-side cursor: rows come in pages, whatever the range holds; each
                    # fetch goes out as pages of up to PAGE_ROWS records and about PAGE_BYTES.
                    with call.conn.cursor(name="grpc_query") as cur:
                        cur.execute(stmt, params)
                        while context.is_active() and (rows := cur.fetchmany(PAGE_ROWS)):
                            page, size = lake_pb2.RecordPage(), 0
                            for row in rows:
                                if size >= PAGE_BYTES:
                                    yield page
                                    page, size = lake_pb2.RecordPage(), 0
                                size += len(row["doc"])
                                page.records.add(
                                    id=row["id"],
                                    ts=row["ts"].isoformat(),
                                    doc=row["doc"],
                                    user_id=_text(row["user_id"]),
                                    page_token=page_token(row["ts"], row["id"]),
                                )
                            yield page
                    call.conn.commit()
                except psycopg.Error as exc:
                    raise errors.from_psycopg(exc) from exc
        except (_Abort, errors.LakeError) as exc:
            self._fail(context, exc)

    def Changes(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        since = request.since
        try:
            with self._session(context) as call:
                conn = call.conn
                while context.is_active():
                    try:
                        # One round: a transaction with the caller's identity; each statement
                        # (READ COMMITTED) sees the changes sealed meanwhile.
                        self._begin(conn, context)
                        round_ends = time.monotonic() + FOLLOW_ROUND_S
                        while context.is_active():
                            rows = conn.execute(
                                sql("grpc_changes"), {"since": since, "max_rows": 1000}
                            ).fetchall()
                            for row in rows:
                                since = row["id"]
                                yield lake_pb2.Change(
                                    id=row["id"],
                                    dataset=row["dataset"],
                                    user_id=_text(row["user_id"]),
                                    record_id=row["record_id"] or 0,
                                    op=row["op"],
                                    before=_text(row["before"]),
                                    after=_text(row["after"]),
                                    source=row["source"],
                                    ts_ms=row["ts_ms"],
                                )
                            if rows:
                                continue
                            if not request.follow:
                                conn.commit()
                                return
                            if time.monotonic() >= round_ends:
                                break
                            time.sleep(FOLLOW_POLL_S)
                        conn.commit()
                    except psycopg.Error as exc:
                        conn.rollback()
                        raise errors.from_psycopg(exc) from exc
        except (_Abort, errors.LakeError) as exc:
            self._fail(context, exc)

    @staticmethod
    def _item(conn: Conn, item_id: int, outcome: str = "") -> Any:
        row = conn.execute(sql("grpc_quarantine_item"), {"id": item_id}).fetchone()
        assert row is not None
        return lake_pb2.QuarantineItem(
            id=row["id"],
            dataset=row["dataset"],
            user_id=_text(row["user_id"]),
            status=row["status"],
            reasons=_text(row["reasons"]),
            doc=_text(row["doc"]),
            raw=_text(row["raw"]),
            outcome=outcome,
        )

    def ListQuarantine(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        def work(conn: Conn) -> list[Any]:
            rows = conn.execute(
                sql("quarantine"),
                {
                    "dataset": request.dataset or None,
                    "status": request.status or "pending",
                    "limit": request.limit or 100,
                },
            ).fetchall()
            return [self._item(conn, r["id"]) for r in rows]

        yield from self._run(context, work, admin=True)

    def ReleaseQuarantine(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work(conn: Conn) -> Any:
            corrected = _json(request.corrected, "corrected")
            batch = conn.execute(
                sql("quarantine_release"),
                {
                    "id": request.id,
                    "corrected": None if corrected is None else Jsonb(corrected),
                    "note": request.note or None,
                },
            ).fetchone()
            assert batch is not None
            outcome = json.dumps(
                {k: batch[k] for k in ("accepted", "archived", "quarantined")}, default=str
            )
            return self._item(conn, request.id, outcome)

        return self._run(context, work, admin=True)

    def DiscardQuarantine(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work(conn: Conn) -> Any:
            conn.execute(sql("quarantine_discard"), {"id": request.id, "reason": request.reason})
            return self._item(conn, request.id, "discarded")

        return self._run(context, work, admin=True)


def server_credentials(tls: ServerFiles, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """Credentials that follow the certificate files: gRPC calls the fetcher before each new
    handshake, and it hands over a new configuration only when the files changed (and the new
    certificate and key belong together: a half-replaced pair waits for the next call)."""
    check_grpc_tls13_only()
    cert_pem, _ = tls.read()
    if not isinstance(
        x509.load_pem_x509_certificate(cert_pem).public_key(), ec.EllipticCurvePublicKey
    ):  # with an RSA key, the TLS 1.2 suite that blocks TLS 1.2 would match
        raise errors.ConfigurationError(
            f"{tls.cert} has no ECDSA key: gRPC would accept TLS 1.2 with it",
            hint="use the lake's certificates (LAKE_HOME/tls/grpc.crt), which are ECDSA",
        )
    roots = client_ca.read_bytes() if client_ca is not None else None
    seen = [tls.stamp()]

    def configuration() -> Any:
        cert, key = tls.read()
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)

    def fetch() -> Any:
        stamp = tls.stamp()
        if stamp == seen[0] or not tls.matches():
            return None  # keep the current certificate
        seen[0] = stamp
        return configuration()

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=client_ca is not None
    )


def make_server(
    dsn: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ServerFiles | None = None,
    client_ca: Path | None = None,
    insecure: bool = False,
    admin_dsn: str | None = None,
    admins: frozenset[str] = frozenset(),
    redis_url: str = "redis://127.0.0.1:6379/0",
    workers: int = 8,
    max_seconds: float = 30.0,
    read_dsn: str | None = None,
) -> tuple[grpc.Server, int, LakeService]:
    """A started gRPC server and the port it listens on (port 0: a free one). TLS with the
    certificate files of ``tls`` (and client certificates signed by ``client_ca`` required when
    given); plaintext only with ``insecure=True`` and no ``tls``. With ``read_dsn`` (a hot
    standby, logging in as ``dsn`` does), Query reads there."""
    if (tls is None) != insecure:
        raise errors.ConfigurationError(
            "the gRPC service needs its certificate (tls) or, for plaintext, insecure=True",
            hint="`lake grpc` serves TLS with LAKE_HOME/tls/grpc.crt; --insecure opts out",
        )
    credentials = None if tls is None else server_credentials(tls, client_ca)
    service = LakeService(
        dsn,
        admin_dsn=admin_dsn,
        admins=admins,
        redis_url=redis_url,
        pool_size=workers,
        max_seconds=max_seconds,
        read_dsn=read_dsn,
    )
    # A span per call, in the caller's trace when its metadata carries a traceparent.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=[server_interceptor()],  # type: ignore[no-untyped-call]
    )
    lake_pb2_grpc.add_LakeServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    names = (
        lake_pb2.DESCRIPTOR.services_by_name["Lake"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    address = f"{host}:{port}"
    if credentials is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, credentials)
    if bound == 0:
        raise errors.ConfigurationError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound, service
