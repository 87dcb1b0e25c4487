"""The Python client: a thin layer over the lake's SQL API.

Everything that decides anything (validation, quarantine, partitions, ownership) happens in the
database; the client moves bytes in with COPY, retries safely, and reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import Copy
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lake_client.config import load_settings
from lake_client.errors import (
    RETRYABLE_SQLSTATES,
    AuthenticationFailed,
    ConnectionFailed,
    JobError,
    LakeError,
    from_psycopg,
)
from lake_client.queries import sql
from lake_client.records import Record, from_objects

Row = dict[str, Any]

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
# COPY's binary format: the server then reads lengths instead of scanning and unescaping text,
# and ts arrives as a number (microseconds since 2000-01-01 UTC) instead of text to parse.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension
_COPY_TRAILER = b"\xff\xff"
_TS_FIELD = struct.Struct(">hiq")  # field count, then ts: length 8, value
_NO_TS = struct.pack(">hi", 4, -1)  # field count, then ts NULL
_LENGTH = struct.Struct(">i")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EPOCH_MAX = {"epoch_s": 253402300799, "epoch_ms": 253402300799999}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a batch after a transient failure: `attempts` in all, waiting `first_delay`
    seconds before the second and doubling each time."""

    attempts: int = 3
    first_delay: float = 1.0


@dataclass
class BatchResult:
    batch_id: uuid.UUID
    received: int
    accepted: int
    quarantined: int
    duplicate: bool = False  # the batch had been committed before (a retry after a lost ack)
    fallback: bool = False  # COPY refused it; every record went through lake.ingest_raw
    attempts: int = 1


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
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _NO_TS
        if not 0 <= value <= _EPOCH_MAX[route.time_format]:
            return _NO_TS
        seconds = value / 1000 if route.time_format == "epoch_ms" else value
        when = datetime.fromtimestamp(seconds, UTC)
    return _TS_FIELD.pack(4, 8, (when - _PG_EPOCH) // _MICROSECOND)


class Lake:
    """A connection to the lake.

    >>> with Lake() as lake:                                  # embedded cluster, or LAKE_DSN
    ...     lake.act_as("alice")                              # administrators only
    ...     summary = lake.ingest("location_history", [{"ts": "...", "lat": 1, "lon": 2}])
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        application_name: str = "lake_client",
        work_mem: str = "64MB",
        connect_timeout: int = 10,
    ) -> None:
        self.dsn = dsn if dsn is not None else load_settings().dsn()
        self.application_name = application_name
        self.work_mem = work_mem
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Row] | None = None
        # The session identity to establish again after reconnecting: (query name, params).
        self._session_identity: tuple[str, dict[str, str]] | None = None

    # -- connection -------------------------------------------------------------------------

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> psycopg.Connection[Row]:
        """The open connection (made on first use, and again after a failure)."""
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(
                    self.dsn, row_factory=dict_row, connect_timeout=self.connect_timeout
                )
            except psycopg.OperationalError as exc:
                raise ConnectionFailed(
                    f"cannot connect to the lake: {str(exc).strip()}",
                    hint="is it running? `lake status` tells; `lake up` starts the embedded one",
                ) from exc
            conn.execute(
                sql("session_setup"), {"work_mem": self.work_mem, "app": self.application_name}
            )
            if self._session_identity is not None:
                name, params = self._session_identity
                conn.execute(sql(name), params)
            conn.commit()
            self._conn = conn
        return self._conn

    def _query(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        conn = self.conn
        try:
            rows = conn.execute(sql(name), params or {}).fetchall()
            conn.commit()
            return rows
        except psycopg.Error as exc:
            self._after_error()
            raise from_psycopg(exc) from exc

    def _after_error(self) -> None:
        if self._conn is None:
            return
        if self._conn.closed or self._conn.broken:
            self._conn = None
        else:
            self._conn.rollback()

    # -- identity ---------------------------------------------------------------------------

    def act_as(self, user_id: str, scope: str = "session") -> None:
        """Act for a lake user (administrators, and services after authenticate()). With scope
        "session" (the default here) the client re-establishes it after reconnecting."""
        params = {"user_id": user_id, "scope": scope}
        self._query("act_as", params)
        if scope == "session":
            self._session_identity = ("act_as", params)

    def authenticate(self, api_key: str, scope: str = "session") -> str:
        """Establish this session's identity from an API key: a user's key makes the session
        that user, a service's key makes it that service (which may then act_as users).
        Returns the principal's id; raises AuthenticationFailed for a key the lake refuses.
        With scope "session" (the default here) the client authenticates again after
        reconnecting."""
        params = {"api_key": api_key, "scope": scope}
        principal = self._query("authenticate", params)[0]["principal"]
        if principal is None:
            raise AuthenticationFailed(
                "authentication failed: the API key is not valid",
                hint="check the key (lake_<id>_<secret>); `lake keys list` shows which keys "
                "are active, and an administrator can rotate or create one",
            )
        if scope == "session":
            self._session_identity = ("authenticate", params)
        return str(principal)

    def identity(self) -> Row | None:
        """The session's identity (user_id, service, principal, key_id, scopes), or None."""
        rows = self._query("current_identity")
        return rows[0] if rows else None

    def current_user_id(self) -> str | None:
        value = self._query("current_user_id")[0]["current_user_id"]
        return None if value is None else str(value)

    # -- users, keys, audit (administrators; the audit log also for auditors) ---------------

    def create_user(self, user_id: str, display_name: str | None = None, kind: str = "user") -> Row:
        """Register a lake user, or a service (kind "service") that acts for users."""
        return self._query(
            "create_user", {"id": user_id, "display_name": display_name, "kind": kind}
        )[0]

    def users(self) -> list[Row]:
        return self._query("users")

    def set_user_enabled(self, user_id: str, enabled: bool) -> Row:
        return self._query("set_user_enabled", {"id": user_id, "enabled": enabled})[0]

    def create_key(
        self,
        principal: str,
        scopes: Sequence[str] = ("read", "write"),
        expires_in: timedelta | None = None,
        label: str | None = None,
    ) -> Row:
        """A new API key (key_id, api_key, scopes, expires_at). The api_key is shown only now."""
        return self._query(
            "create_api_key",
            {
                "principal": principal,
                "scopes": list(scopes),
                "expires_in": expires_in,
                "label": label,
            },
        )[0]

    def keys(self, principal: str | None = None) -> list[Row]:
        return self._query("api_keys", {"principal": principal})

    def rotate_key(self, key_id: str) -> Row:
        """Replace a key by a new one with the same scopes; the old one stops working now."""
        return self._query("rotate_api_key", {"key_id": key_id})[0]

    def revoke_key(self, key_id: str) -> None:
        self._query("revoke_api_key", {"key_id": key_id})

    def link_oauth(self, provider: str, subject: str, user_id: str) -> None:
        self._query("link_oauth", {"provider": provider, "subject": subject, "user_id": user_id})

    def pii_reveal(self, dataset: str, ids: Sequence[int]) -> list[Row]:
        """Records with their pii_fields in clear (members of lake_pii_reader; audited)."""
        return self._query("pii_reveal", {"dataset": dataset, "ids": list(ids)})

    def pii_findings(self, dataset: str | None = None, limit: int = 100) -> list[Row]:
        """Where stored records hold personal identifiers (path and kind, never the value)."""
        return self._query("pii_findings", {"dataset": dataset, "limit": limit})

    def verify_audit_chain(self) -> Row:
        """ok, entries, first_bad_id, problem, pending, pending_age (see
        lake.verify_audit_chain), after sealing what has committed."""
        self._query("seal")
        return self._query("verify_audit_chain")[0]

    def audit_log(self, limit: int = 50, action: str | None = None) -> list[Row]:
        """The newest audit entries first (sealing what has committed first)."""
        self._query("seal")
        return self._query("audit_log", {"limit": limit, "action": action})

    # -- datasets ---------------------------------------------------------------------------

    def create_dataset(self, name: str, json_schema: dict[str, Any], **options: Any) -> Row:
        rows = self._query(
            "create_dataset",
            {"name": name, "json_schema": Jsonb(json_schema), "options": Jsonb(options)},
        )
        return rows[0]

    def datasets(self) -> list[Row]:
        return self._query("datasets")

    # -- change capture (administrators) -----------------------------------------------------

    def changes(self, since: int = 0, limit: int = 1000) -> list[Row]:
        """Committed changes to user data after the change id `since`, oldest first, at most
        `limit` (lake.data_changes: op c/u/d/t, before, after, source, ts_ms). Ids follow commit
        order, so keeping the last id seen as a cursor reads every change exactly once. Seals what
        has committed first (lake.seal), so a reader never waits for the bridge or the job."""
        self._query("seal")
        return self._query("changes", {"since": since, "limit": limit})

    # -- jobs (administrators) ---------------------------------------------------------------

    def jobs(self) -> list[Row]:
        """The lake's scheduled jobs (lake.jobs): schedule, whether pg_cron has them, last run."""
        return self._query("jobs")

    def job_runs(self, job: str | None = None, limit: int = 20) -> list[Row]:
        """The latest runs recorded by lake.run_maintenance, newest first."""
        return self._query("job_runs", {"job": job, "limit": limit})

    def run_job(self, job: str | None = None, now: datetime | str | None = None) -> None:
        """Run a job now, as pg_cron would: through lake.run_maintenance (every job when `job`
        is None, working for the time `now`: a datetime or a timestamptz literal), or, for vacuum
        and reindex, their statement."""
        conn = self.conn
        try:
            defs = conn.execute(sql("job_def"), {"job": job}).fetchall() if job else []
            conn.commit()
            # The procedure commits as it goes and VACUUM refuses transactions: autocommit.
            conn.autocommit = True
            try:
                if defs and defs[0]["kind"] == "statement":
                    if now is not None:
                        raise JobError(f"job {job!r} has no notion of now: drop --now")
                    conn.execute(str(defs[0]["command"]))
                else:
                    conn.execute(sql("run_maintenance"), {"job": job, "now": now})
            finally:
                conn.autocommit = False
        except psycopg.Error as exc:
            self._after_error()
            raise from_psycopg(exc) from exc

    def partitions(self, dataset: str | None = None) -> list[Row]:
        return self._query("partitions", {"dataset": dataset})

    def archives(self, dataset: str | None = None) -> list[Row]:
        """Archives of expired months (lake.archives), oldest first per dataset."""
        return self._query("archives", {"dataset": dataset})

    def restore(self, dataset: str, month: str) -> Row:
        """Bring an archived month (``YYYY-MM``) back with lake.restore_partition
        (administrators)."""
        return self._query("restore_partition", {"dataset": dataset, "month": f"{month}-01 UTC"})[0]

    def row_counts(self, dataset: str) -> dict[str, int]:
        """Exact rows per partition that this session may see (a full scan: for small data)."""
        stmt = pgsql.SQL(sql("exact_counts")).format(dataset=pgsql.Identifier(dataset))
        try:
            rows = self.conn.execute(stmt).fetchall()
            self.conn.commit()
        except psycopg.Error as exc:
            self._after_error()
            raise from_psycopg(exc) from exc
        return {str(r["partition"]).split(".")[-1]: int(r["n"]) for r in rows}

    # -- ingest -----------------------------------------------------------------------------

    def ingest_sql(
        self,
        dataset: str,
        records: Sequence[Any],
        *,
        batch_id: uuid.UUID | None = None,
        for_user: str | None = None,
        origin: str | None = None,
    ) -> Row:
        """One call of lake.ingest(): the SQL path, for small arrays."""
        return self._query(
            "ingest_sql",
            {
                "dataset": dataset,
                "records": Jsonb(list(records)),
                "batch_id": batch_id,
                "for_user": for_user,
                "origin": origin,
            },
        )[0]

    def ingest(
        self,
        dataset: str,
        records: Iterable[Any],
        *,
        batch_size: int = 10_000,
        for_user: str | None = None,
        origin: str | None = None,
        retry: RetryPolicy | None = None,
        on_batch: Callable[[BatchResult, int], None] | None = None,
        batch_namespace: uuid.UUID | None = None,
        jobs: int = 1,
    ) -> IngestSummary:
        """Stream records into a dataset with COPY, `batch_size` records per transaction.

        `records` are Record objects (from lake_client.records), dicts, or JSON text as str or
        bytes. Each batch carries an id chosen here, so a batch retried after a lost
        acknowledgement is recognised by the database instead of stored twice. `on_batch` is
        called after each batch with its result and the bytes it carried.

        With `batch_namespace`, batch i gets the id uuid5(namespace, i) instead of a random one:
        ingesting the same records again with the same namespace (and batch size) then skips
        every batch that was committed before, which makes a re-run after a crash safe.

        With `jobs` > 1, that many sessions load batches side by side (each batch is still one
        transaction of its own; their order in the database is then not the order of the
        input). Validation is CPU work in the server, so up to one job per server core helps.
        """
        if batch_size < 1:
            raise LakeError("batch_size must be at least 1")
        if jobs < 1:
            raise LakeError("jobs must be at least 1")
        policy = retry or RetryPolicy()
        summary = IngestSummary(dataset)
        started = time.perf_counter()

        def batches() -> Iterator[tuple[uuid.UUID, list[Record]]]:
            for index, chunk in enumerate(_chunks(from_objects(records), batch_size)):
                yield (
                    (
                        uuid.uuid4()
                        if batch_namespace is None
                        else uuid.uuid5(batch_namespace, str(index))
                    ),
                    chunk,
                )

        def done(result: BatchResult, chunk: list[Record]) -> None:
            summary.batches.append(result)
            if on_batch is not None:
                on_batch(result, sum(len(r.raw) for r in chunk))

        if jobs == 1:
            for batch_id, chunk in batches():
                done(self._ingest_batch(dataset, batch_id, chunk, for_user, origin, policy), chunk)
        else:
            self._ingest_parallel(dataset, batches(), jobs, for_user, origin, policy, done)
        summary.seconds = time.perf_counter() - started
        if summary.quarantined:
            rows = self._query(
                "batch_reasons", {"batch_ids": [b.batch_id for b in summary.batches]}
            )
            summary.reasons = [ReasonCount(r["rule"], r["records"], r["example"]) for r in rows]
        return summary

    def _ingest_parallel(
        self,
        dataset: str,
        batches: Iterator[tuple[uuid.UUID, list[Record]]],
        jobs: int,
        for_user: str | None,
        origin: str | None,
        policy: RetryPolicy,
        done: Callable[[BatchResult, list[Record]], None],
    ) -> None:
        """`jobs` sessions (this one and jobs - 1 more, with the same identity), each taking the
        next batch when it is free. At most 2 x jobs batches are read ahead."""
        sessions: queue.Queue[Lake] = queue.Queue()
        sessions.put(self)
        extra = []
        for _ in range(jobs - 1):
            other = Lake(
                self.dsn,
                application_name=self.application_name,
                work_mem=self.work_mem,
                connect_timeout=self.connect_timeout,
            )
            other._session_identity = self._session_identity
            extra.append(other)
            sessions.put(other)
        lock = threading.Lock()

        def work(batch_id: uuid.UUID, chunk: list[Record]) -> None:
            lake = sessions.get()
            try:
                result = lake._ingest_batch(dataset, batch_id, chunk, for_user, origin, policy)
            finally:
                sessions.put(lake)
            with lock:
                done(result, chunk)

        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                pending: set[Future[None]] = set()
                for batch_id, chunk in batches:
                    pending.add(pool.submit(work, batch_id, chunk))
                    if len(pending) >= 2 * jobs:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            f.result()  # the first failure stops the load
                for f in pending:
                    f.result()
        finally:
            for other in extra:
                other.close()

    def _ingest_batch(
        self,
        dataset: str,
        batch_id: uuid.UUID,
        chunk: list[Record],
        for_user: str | None,
        origin: str | None,
        policy: RetryPolicy,
    ) -> BatchResult:
        digest = hashlib.sha256()
        for rec in chunk:
            digest.update(rec.raw)
            digest.update(b"\n")
        checksum = digest.hexdigest()
        fallback = False
        delay = policy.first_delay
        attempt = 1
        while True:
            try:
                result = self._try_batch(
                    dataset, batch_id, checksum, chunk, for_user, origin, fallback
                )
                result.attempts = attempt
                return result
            except psycopg.Error as exc:
                self._after_error()
                state = exc.sqlstate or ""
                if not fallback and (state[:2] in ("22", "54") or state == "23514"):
                    # COPY refused a record the client thought routable: the whole batch goes
                    # through lake.ingest_raw, which judges each record on its own.
                    fallback = True
                    continue
                transient = isinstance(exc, psycopg.OperationalError) or (
                    state in RETRYABLE_SQLSTATES
                )
                if not transient or attempt >= policy.attempts:
                    raise from_psycopg(exc) from exc
                time.sleep(delay)
                delay *= 2
                attempt += 1
            except LakeError:
                self._after_error()
                raise

    def _try_batch(
        self,
        dataset: str,
        batch_id: uuid.UUID,
        checksum: str,
        chunk: list[Record],
        for_user: str | None,
        origin: str | None,
        fallback: bool,
    ) -> BatchResult:
        conn = self.conn
        with conn.transaction():
            if for_user is not None:
                conn.execute(sql("act_as"), {"user_id": for_user, "scope": "transaction"})
            info = conn.execute(
                sql("begin_batch"),
                {"dataset": dataset, "batch_id": batch_id, "checksum": checksum, "origin": origin},
            ).fetchone()
            assert info is not None
            if not info["is_new"]:
                return BatchResult(
                    batch_id,
                    info["received"],
                    info["accepted"],
                    info["quarantined"],
                    duplicate=True,
                )
            route = _Route(info["time_field"], info["time_format"], info["max_record_bytes"])
            slow: list[Record] = chunk if fallback else []
            if not fallback:
                batch_field = _LENGTH.pack(16) + batch_id.bytes
                stmt = pgsql.SQL(sql("copy_rows")).format(dataset=pgsql.Identifier(dataset))
                with contextlib.ExitStack() as stack:
                    copy: Copy | None = None
                    parts: list[bytes] = [_COPY_HEADER]
                    pending = 0
                    for n, rec in enumerate(chunk, start=1):
                        start = _fast_time(rec.raw, route)
                        if start is None:
                            slow.append(rec)
                        else:
                            ref = rec.ref.encode()
                            parts += (start, _LENGTH.pack(len(rec.raw) + 1), b"\x01", rec.raw)
                            parts += (batch_field, _LENGTH.pack(len(ref)), ref)
                            pending += 1
                        if pending and (pending >= _COPY_CHUNK or n == len(chunk)):
                            if copy is None:
                                cur = stack.enter_context(conn.cursor())
                                copy = stack.enter_context(cur.copy(stmt))
                            copy.write(b"".join(parts))
                            parts.clear()
                            pending = 0
                    if copy is not None:
                        copy.write(_COPY_TRAILER)
            if slow:
                conn.execute(
                    sql("ingest_raw"),
                    {
                        "dataset": dataset,
                        "batch_id": batch_id,
                        "refs": [r.ref for r in slow],
                        "raws": [r.raw for r in slow],
                    },
                )
            done = conn.execute(
                sql("end_batch"), {"batch_id": batch_id, "sent": len(chunk)}
            ).fetchone()
            assert done is not None
        return BatchResult(
            batch_id, done["received"], done["accepted"], done["quarantined"], fallback=fallback
        )

    # -- checkpoints and rollback -----------------------------------------------------------

    def checkpoint(self, dataset: str, label: str = "manual") -> Row:
        """Record a recovery point of the dataset (administrators)."""
        return self._query("checkpoint", {"dataset": dataset, "label": label})[0]

    def checkpoints(self, dataset: str) -> list[Row]:
        """The dataset's checkpoints, newest first, with can_rollback for the last 5."""
        return self._query("checkpoints", {"dataset": dataset})

    def rollback(self, dataset: str, checkpoint_id: int) -> Row:
        """Return the dataset to a checkpoint's state; returns before_checkpoint (roll back
        to it to undo this), rows_deleted, rows_restored, rows_not_restored."""
        return self._query("rollback", {"dataset": dataset, "checkpoint": checkpoint_id})[0]

    # -- quarantine -------------------------------------------------------------------------

    def quarantine(
        self, dataset: str | None = None, status: str | None = "pending", limit: int = 100
    ) -> list[Row]:
        return self._query("quarantine", {"dataset": dataset, "status": status, "limit": limit})

    def quarantine_release(
        self, item_id: int, corrected: dict[str, Any] | None = None, note: str | None = None
    ) -> Row:
        return self._query(
            "quarantine_release",
            {
                "id": item_id,
                "corrected": None if corrected is None else Jsonb(corrected),
                "note": note,
            },
        )[0]

    def quarantine_discard(self, item_id: int, reason: str) -> Row:
        return self._query("quarantine_discard", {"id": item_id, "reason": reason})[0]


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
