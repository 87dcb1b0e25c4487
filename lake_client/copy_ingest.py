"""The COPY engine: streams records into a dataset's inbox, a batch per transaction.

Everything that decides anything (validation, quarantine, partitions, ownership) happens in the
database; this module moves bytes in with binary COPY, hands the records it cannot prepare to
lake.ingest_raw, retries transient failures (a batch id chosen here makes a retry after a lost
acknowledgement safe), and reports. It works on a Session (lake_client.session); Lake.ingest is
its public entry point.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import queue
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from opentelemetry.trace import Span
from psycopg import Copy
from psycopg import sql as pgsql

from lake_client.errors import LakeError
from lake_client.queries import sql
from lake_client.records import Record, from_objects
from lake_client.session import RetryPolicy, Row, Session, fetch
from lake_client.telemetry import tracer

# Mirrors lake.parse_time(): RFC 3339 with a mandatory offset (seconds up to 59: the client
# leaves leap seconds to the database). A record whose time the client cannot read this way is
# handed to lake.ingest_raw, where the database decides...
_RFC3339 = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
# ...unless it fails lake.parse_time()'s own test too: then the database finds no time in it
# either, and the record is sent with COPY like the others, its ts NULL (see _fast_time).
_PARSE_TIME = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:"
    r"(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
# Routable records are streamed to COPY this many at a time, so that the server parses and
# stores a batch while the client is still preparing the rest of it.
_COPY_CHUNK = 500
# A record COPY cannot carry that is larger goes to lake.ingest_raw in a call of its own.
_LARGE_RECORD = 1 << 20
# COPY's binary format: the server then reads lengths instead of scanning and unescaping text,
# and ts arrives as a number (microseconds since 2000-01-01 UTC) instead of text to parse.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension
_COPY_TRAILER = b"\xff\xff"
_TS_FIELD = struct.Struct(">hiq")  # field count, then ts: length 8, value
_NO_TS = struct.pack(">hi", 4, -1)  # field count, then ts NULL
_LENGTH = struct.Struct(">i")
_RAW_FIELD = struct.Struct(">hi")  # field count, then the field's length
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PG_EPOCH_UNIX = 946684800.0  # 2000-01-01 in Unix seconds
_EPOCH_MAX = {"epoch_s": 253402300799, "epoch_ms": 253402300799999}
_EPOCH_DIGITS = re.compile(r"[0-9]{1,20}")
_COPY_SPAN = {"db.system.name": "postgresql", "db.operation.name": "COPY"}


@dataclass
class BatchResult:
    batch_id: uuid.UUID
    received: int
    accepted: int
    quarantined: int
    archived: int = 0  # valid records older than the lake's first month: in its archive
    duplicate: bool = False  # the batch had been committed before (a retry after a lost ack)
    fallback: bool = False  # COPY refused it; every record went through lake.ingest_raw
    attempts: int = 1
    first: int = 0  # the input position (from 1) of its first record


@dataclass
class ReasonCount:
    rule: str
    records: int
    example: str


@dataclass
class IngestSummary:
    dataset: str
    batches: list[BatchResult] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1  # sessions that loaded batches side by side

    @property
    def received(self) -> int:
        return sum(b.received for b in self.batches)

    @property
    def accepted(self) -> int:
        return sum(b.accepted for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches)

    @property
    def archived(self) -> int:
        return sum(b.archived for b in self.batches)

    @property
    def records_per_second(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Route:
    """What begin_batch told us that the client needs to prepare a record's row."""

    time_field: str
    time_format: str
    max_record_bytes: int


def _fast_time(raw: bytes, route: _Route) -> bytes | None:
    """The start of the record's row in binary COPY (field count and ts), or None to hand the
    record to lake.ingest_raw.

    A record goes with COPY when PostgreSQL will read it as jsonb: with its time when the client
    reads that time exactly as lake.parse_time() does, or with ts NULL when lake.parse_time()
    surely finds no time in it (missing, not a string, not RFC 3339, not an object at all). The
    inbox's trigger then decides, as for any row: it quarantines what is invalid, with reasons,
    and makes partitions on demand. Never decides validity itself."""
    # orjson refuses NUL bytes and invalid UTF-8; PostgreSQL's jsonb also refuses \u0000.
    if len(raw) > route.max_record_bytes or b"\\u0000" in raw:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = doc.get(route.time_field) if type(doc) is dict else None
    if route.time_format == "rfc3339":
        if type(value) is not str:
            return _NO_TS
        if _RFC3339.fullmatch(value) is None:
            return _NO_TS if _PARSE_TIME.fullmatch(value) is None else None
        offset = 1 if value[-1] in "Zz" else 6
        if (value[19] == "." and len(value) - 20 - offset > 6) or (
            offset == 6 and value[-5:-3] > "15"
        ):
            # More than microseconds, which PostgreSQL rounds (Python truncates), or an offset
            # of 16 hours or more, which PostgreSQL refuses: the database decides.
            return None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            try:  # "t" and "z" in lower case, or a day the month does not have
                when = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
            except ValueError:
                return None
    else:
        if type(value) is str and _EPOCH_DIGITS.fullmatch(value) is not None:
            value = int(value)  # digits as a JSON string (Takeout's timestampMs), as parse_time
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _NO_TS
        if not 0 <= value <= _EPOCH_MAX[route.time_format]:
            return _NO_TS
        if type(value) is float and not value.is_integer():
            return None  # a fraction: Python's float rounding may differ by a microsecond
        # As to_timestamp(double precision) computes it, operation for operation (a correctly
        # rounded quotient, the shift to 2000-01-01, rint to microseconds), so the two agree to
        # the microsecond up to the year 9999.
        seconds = value / 1000 if route.time_format == "epoch_ms" else float(value)
        return _TS_FIELD.pack(4, 8, round((seconds - _PG_EPOCH_UNIX) * 1_000_000))
    return _TS_FIELD.pack(4, 8, (when - _PG_EPOCH) // _MICROSECOND)


class _Stopped(LakeError):
    """A worker of a parallel load gave up its batch because the load is stopping (another
    worker failed, or Ctrl-C): the batch rolled back, which is no failure of its own."""


@dataclass(frozen=True)
class _Batch:
    batch_id: uuid.UUID
    first: int  # the input position (from 1) of its first record
    chunk: list[Record]


def ingest(
    session: Session,
    dataset: str,
    records: Iterable[Any],
    *,
    batch_size: int,
    for_user: str | None,
    origin: str | None,
    retry: RetryPolicy,
    on_batch: Callable[[BatchResult, int], None] | None,
    batch_namespace: uuid.UUID | None,
    jobs: int | None,
) -> IngestSummary:
    """Lake.ingest (whose docstring tells what each argument does), on `session`: a span
    lake.ingest, with a span lake.ingest.batch for each batch and lake.copy for its COPY."""
    if batch_size < 1:
        raise LakeError("batch_size must be at least 1")
    if jobs is not None and jobs < 1:
        raise LakeError("jobs must be at least 1")
    with tracer.start_as_current_span(
        "lake.ingest", attributes={"lake.dataset": dataset, "lake.batch_size": batch_size}
    ) as span:
        summary = IngestSummary(dataset)
        started = time.perf_counter()

        def batches() -> Iterator[_Batch]:
            first = 1
            for index, chunk in enumerate(_chunks(from_objects(records), batch_size)):
                # Batch ids depend on the batch's place only, never on the sessions: a re-run with
                # another number of jobs recognises the same batches.
                if batch_namespace is None:
                    yield _Batch(uuid.uuid4(), first, chunk)
                else:
                    yield _Batch(uuid.uuid5(batch_namespace, str(index)), first, chunk)
                first += len(chunk)

        def done(result: BatchResult, batch: _Batch) -> None:
            result.first = batch.first
            summary.batches.append(result)
            if on_batch is not None:
                on_batch(result, sum(len(r.raw) for r in batch.chunk))

        pending = batches()
        head = list(itertools.islice(pending, 2))
        if len(head) > 1 and jobs is None:  # one batch needs one session: no need to ask
            jobs = server_cores(session)
        if len(head) < 2 or jobs == 1:
            for batch in itertools.chain(head, pending):
                done(_ingest_batch(session, dataset, batch, for_user, origin, retry), batch)
        else:
            summary.jobs = jobs or 1
            _ingest_parallel(
                session,
                dataset,
                itertools.chain(head, pending),
                summary.jobs,
                for_user,
                origin,
                retry,
                done,
            )
            summary.batches.sort(key=lambda b: b.first)  # in input order, as one session has them
        summary.seconds = time.perf_counter() - started
        if summary.quarantined:
            rows = fetch(
                session, "batch_reasons", {"batch_ids": [b.batch_id for b in summary.batches]}
            )
            summary.reasons = [ReasonCount(r["rule"], r["records"], r["example"]) for r in rows]
        span.set_attributes(
            {
                "lake.batches": len(summary.batches),
                "lake.jobs": summary.jobs,
                "lake.records.received": summary.received,
                "lake.records.accepted": summary.accepted,
                "lake.records.quarantined": summary.quarantined,
            }
        )
        return summary


def server_cores(session: Session) -> int:
    """The CPU cores the server may use (lake.server_cores): a load's sessions unless told."""
    return max(1, int(fetch(session, "server_cores")[0]["cores"]))


def _ingest_parallel(
    session: Session,
    dataset: str,
    batches: Iterator[_Batch],
    jobs: int,
    for_user: str | None,
    origin: str | None,
    policy: RetryPolicy,
    done: Callable[[BatchResult, _Batch], None],
) -> None:
    """`jobs` sessions (this one and jobs - 1 forks of it, with the same identity), a thread
    each, taking whole batches from a queue that this thread fills as it reads (at most `jobs`
    batches read ahead). Each batch is still one transaction.

    The first failure stops the load: no worker takes another batch, one in the middle of a
    batch gives it up (it rolls back whole), and the failure is raised once every worker has
    stopped, so that `done` has seen exactly the batches that committed. An interrupt (Ctrl-C)
    stops it the same way and also cancels the statements running, so that it ends at once."""
    todo: queue.Queue[_Batch | None] = queue.Queue(maxsize=jobs)
    stop = threading.Event()
    lock = threading.Lock()
    failures: list[BaseException] = []
    sessions = [session, *(session.fork() for _ in range(jobs - 1))]

    def work(mine: Session) -> None:
        while True:
            try:
                batch = todo.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if batch is None or stop.is_set():
                return
            try:
                result = _ingest_batch(mine, dataset, batch, for_user, origin, policy, stop)
                with lock:
                    done(result, batch)
            except _Stopped:
                return
            except BaseException as exc:  # handed to the reading thread, which raises it
                with lock:
                    failures.append(exc)
                stop.set()
                return

    def put(item: _Batch | None) -> bool:
        """Queue an item unless the load stops first (its workers may be gone)."""
        while not stop.is_set():
            try:
                todo.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    # Daemon threads: a second Ctrl-C while the first is handled exits without waiting for them
    # (the server rolls back what they were doing when their connections close). Each runs in a
    # copy of this thread's context: its batches' spans are children of the load's.
    workers = [
        threading.Thread(target=contextvars.copy_context().run, args=(work, s), daemon=True)
        for s in sessions
    ]
    for worker in workers:
        worker.start()
    try:
        for batch in batches:
            if not put(batch):
                break
        for _ in workers:  # one end mark each; once the load stops they end by themselves
            if not put(None):
                break
        for worker in workers:  # here too, Ctrl-C must stop them before anything is reported
            worker.join()
    except KeyboardInterrupt:
        stop.set()
        for one in sessions:
            one.cancel()
        raise
    except BaseException:
        stop.set()
        raise
    finally:
        for worker in workers:
            worker.join()
        for other in sessions[1:]:
            other.close()
    if failures:
        raise failures[0]


def _copy_refused(exc: psycopg.Error) -> bool:
    """COPY refused a record the client thought routable (data, limit or check errors)."""
    state = exc.sqlstate or ""
    return state[:2] in ("22", "54") or state == "23514"


def _ingest_batch(
    session: Session,
    dataset: str,
    batch: _Batch,
    for_user: str | None,
    origin: str | None,
    policy: RetryPolicy,
    stop: threading.Event | None = None,
) -> BatchResult:
    """One batch in one transaction, retried after transient failures; with `stop` (a parallel
    load), given up as _Stopped once it is set."""
    with _batch_span(batch.batch_id, len(batch.chunk), batch.first) as span:
        result = _ingest_batch_attempts(session, dataset, batch, for_user, origin, policy, stop)
        _record(span, result)
        return result


def _batch_span(
    batch_id: uuid.UUID, records: int, first: int | None = None
) -> contextlib.AbstractContextManager[Span]:
    """The span lake.ingest.batch of one batch (its attempts, its statements)."""
    attributes: dict[str, Any] = {"lake.batch_id": str(batch_id), "lake.records": records}
    if first is not None:
        attributes["lake.first"] = first
    return tracer.start_as_current_span("lake.ingest.batch", attributes=attributes)


def _record(span: Span, result: BatchResult) -> None:
    span.set_attributes(
        {
            "lake.accepted": result.accepted,
            "lake.quarantined": result.quarantined,
            "lake.attempts": result.attempts,
            "lake.duplicate": result.duplicate,
            "lake.fallback": result.fallback,
        }
    )


def _ingest_batch_attempts(
    session: Session,
    dataset: str,
    batch: _Batch,
    for_user: str | None,
    origin: str | None,
    policy: RetryPolicy,
    stop: threading.Event | None,
) -> BatchResult:
    batch_id, chunk = batch.batch_id, batch.chunk
    checksum = _checksum(chunk)
    fallback = False

    def attempt(n: int) -> BatchResult:
        nonlocal fallback
        if not fallback:
            try:
                result = _try_batch(
                    session.conn, dataset, batch_id, checksum, chunk, for_user, origin, stop=stop
                )
                result.attempts = n
                return result
            except psycopg.Error as exc:
                if not _copy_refused(exc):
                    raise
                # The whole batch goes through lake.ingest_raw, which judges each record on its
                # own (in this attempt: the failure was no transient one).
                session.recover()
                fallback = True
        result = _try_batch(
            session.conn, dataset, batch_id, checksum, chunk, for_user, origin, True, stop=stop
        )
        result.attempts = n
        return result

    def stoppable(n: int) -> BatchResult:
        _check(stop)
        try:
            return attempt(n)
        except psycopg.Error:
            _check(stop)  # cancelled by the interrupt (QueryCanceled): not to be retried
            raise

    return policy.run(attempt if stop is None else stoppable, session.recover)


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise _Stopped("the load is stopping")


def _checksum(chunk: list[Record]) -> str:
    digest = hashlib.sha256()
    for rec in chunk:
        digest.update(rec.raw)
        digest.update(b"\n")
    return digest.hexdigest()


def store_batch(
    conn: psycopg.Connection[Row],
    dataset: str,
    batch_id: uuid.UUID,
    chunk: list[Record],
    origin: str | None,
) -> BatchResult:
    """One batch inside the caller's open transaction, whose identity the caller established
    (the gRPC service): COPY into the inbox or, when COPY refuses a record, the whole batch
    through lake.ingest_raw, each attempt in a savepoint. No retries here: the caller's
    transaction is the unit, and the batch id makes sending it again safe."""
    checksum = _checksum(chunk)
    with _batch_span(batch_id, len(chunk)) as span:
        try:
            result = _try_batch(conn, dataset, batch_id, checksum, chunk, None, origin)
        except psycopg.Error as exc:
            if not _copy_refused(exc):
                raise
            result = _try_batch(conn, dataset, batch_id, checksum, chunk, None, origin, True)
        _record(span, result)
        return result


def store_batches(
    conn: psycopg.Connection[Row],
    dataset: str,
    batches: list[tuple[uuid.UUID, list[Record]]],
    origin: str | None,
) -> list[BatchResult]:
    """Several batches inside the caller's open transaction (as store_batch), their records in
    one COPY: the inbox trigger's work for a statement and the commit are paid once for them
    all, as for one batch of `lake ingest`'s 10 000 (a gRPC batch holds at most 1 000). Each
    batch keeps its id, counts and idempotency. When COPY refuses a record, each batch is
    stored again on its own (store_batch), so that only the refused one's records go through
    lake.ingest_raw."""
    if len(batches) == 1:
        return [store_batch(conn, dataset, batches[0][0], batches[0][1], origin)]
    todo = [(batch_id, _checksum(chunk), chunk) for batch_id, chunk in batches]
    attributes = {"lake.batches": len(todo), "lake.records": sum(len(c) for _, c in batches)}
    with tracer.start_as_current_span("lake.ingest.batches", attributes=attributes):
        try:
            return _try_batches(conn, dataset, todo, None, origin)
        except psycopg.Error as exc:
            if not _copy_refused(exc):
                raise
        return [store_batch(conn, dataset, batch_id, chunk, origin) for batch_id, chunk in batches]


def _try_batch(
    conn: psycopg.Connection[Row],
    dataset: str,
    batch_id: uuid.UUID,
    checksum: str,
    chunk: list[Record],
    for_user: str | None,
    origin: str | None,
    fallback: bool = False,
    *,
    stop: threading.Event | None = None,
) -> BatchResult:
    batch = [(batch_id, checksum, chunk)]
    return _try_batches(conn, dataset, batch, for_user, origin, fallback, stop=stop)[0]


def _try_batches(
    conn: psycopg.Connection[Row],
    dataset: str,
    batches: list[tuple[uuid.UUID, str, list[Record]]],
    for_user: str | None,
    origin: str | None,
    fallback: bool = False,
    *,
    stop: threading.Event | None = None,
) -> list[BatchResult]:
    """Batches (id, checksum, records) in one transaction (a savepoint in the caller's) and
    their routable records in one COPY; with `fallback`, every record through
    lake.ingest_raw."""
    results: list[BatchResult | None] = []
    new: list[tuple[int, uuid.UUID, list[Record], list[Record]]] = []  # index, id, chunk, slow
    with conn.transaction():
        if for_user is not None:
            conn.execute(sql("act_as"), {"user_id": for_user, "scope": "transaction"})
        route: _Route | None = None
        for batch_id, checksum, chunk in batches:
            info = conn.execute(
                sql("begin_batch"),
                {"dataset": dataset, "batch_id": batch_id, "checksum": checksum, "origin": origin},
            ).fetchone()
            assert info is not None
            if not info["is_new"]:
                results.append(
                    BatchResult(
                        batch_id,
                        info["received"],
                        info["accepted"],
                        info["quarantined"],
                        info["archived"],
                        duplicate=True,
                    )
                )
                continue
            route = _Route(info["time_field"], info["time_format"], info["max_record_bytes"])
            new.append((len(results), batch_id, chunk, list(chunk) if fallback else []))
            results.append(None)
        if route is not None and not fallback:
            _copy(conn, dataset, route, new, stop)
        for index, batch_id, chunk, slow in new:
            if slow:
                _send_raw(conn, dataset, batch_id, slow)
            done = conn.execute(
                sql("end_batch"), {"batch_id": batch_id, "sent": len(chunk)}
            ).fetchone()
            assert done is not None
            results[index] = BatchResult(
                batch_id,
                done["received"],
                done["accepted"],
                done["quarantined"],
                done["archived"],
                fallback=fallback,
            )
    return [r for r in results if r is not None]


def _copy(
    conn: psycopg.Connection[Row],
    dataset: str,
    route: _Route,
    batches: list[tuple[int, uuid.UUID, list[Record], list[Record]]],
    stop: threading.Event | None,
) -> None:
    """The batches' routable records in one binary COPY into the inbox, written _COPY_CHUNK
    rows at a time; each batch's others are appended to its `slow` list."""
    with contextlib.ExitStack() as stack:
        copy: Copy | None = None
        parts: list[bytes] = [_COPY_HEADER]
        pending = 0
        last = len(batches) - 1
        for b, (_, batch_id, chunk, slow) in enumerate(batches):
            batch_field = _LENGTH.pack(16) + batch_id.bytes
            for n, rec in enumerate(chunk, start=1):
                start = _fast_time(rec.raw, route)
                if start is None:
                    slow.append(rec)
                else:
                    ref = rec.ref.encode()
                    parts += (start, _LENGTH.pack(len(rec.raw) + 1), b"\x01", rec.raw)
                    parts += (batch_field, _LENGTH.pack(len(ref)), ref)
                    pending += 1
                if pending and (pending >= _COPY_CHUNK or (b == last and n == len(chunk))):
                    _check(stop)  # the load stops: give the batch up (it rolls back)
                    if copy is None:
                        # A span of its own, which the COPY's line in PostgreSQL's log names.
                        span = tracer.start_as_current_span("lake.copy", attributes=_COPY_SPAN)
                        stack.enter_context(span)
                        stmt = pgsql.SQL(sql("copy_rows")).format(dataset=pgsql.Identifier(dataset))
                        cur = stack.enter_context(conn.cursor())
                        copy = stack.enter_context(cur.copy(stmt))
                    copy.write(b"".join(parts))
                    parts.clear()
                    pending = 0
        if copy is not None:
            copy.write(_COPY_TRAILER)


def _send_raw(
    conn: psycopg.Connection[Row], dataset: str, batch_id: uuid.UUID, slow: list[Record]
) -> None:
    """The records COPY into the inbox cannot carry, through lake.ingest_raw, in their order: a
    run of small ones in one call (their bytes in binary, not as hex text); a large one (over
    _LARGE_RECORD bytes) streamed with COPY into pg_temp.lake_raw and handed on from there, so
    that the client holds its bytes once (a 100 MB record sent as hex text in an array
    parameter cost the CLI 775 MB; as one binary parameter, still twice more in the driver)."""
    run: list[Record] = []

    def send_run() -> None:
        if run:
            conn.execute(
                sql("ingest_raw"),
                {
                    "dataset": dataset,
                    "batch_id": batch_id,
                    "refs": [r.ref for r in run],
                    "raws": [r.raw for r in run],
                },
            )
            run.clear()

    for rec in slow:
        if len(rec.raw) > _LARGE_RECORD:
            send_run()
            row = conn.execute(sql("raw_table_missing")).fetchone()
            if row is not None and row["missing"]:
                conn.execute(sql("raw_table"))
            with conn.cursor() as cur, cur.copy(sql("raw_copy")) as copy:
                # One binary COPY row; the record's bytes go as they are, in the driver's chunks.
                copy.write(_COPY_HEADER + _RAW_FIELD.pack(1, len(rec.raw)))
                copy.write(rec.raw)
                copy.write(_COPY_TRAILER)
            conn.execute(
                sql("ingest_raw_copied"), {"dataset": dataset, "batch_id": batch_id, "ref": rec.ref}
            )
        else:
            run.append(rec)
    send_run()


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
