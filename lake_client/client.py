"""The Python client: a thin layer over the lake's SQL API.

Everything that decides anything (validation, quarantine, partitions, ownership) happens in the
database; the client moves bytes in with COPY, retries safely, and reports.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lake_client import copy_ingest, export, oidc, places, quarantine_files, vectors
from lake_client.cache import LakeCache
from lake_client.config import load_settings
from lake_client.copy_ingest import BatchResult, IngestSummary, ReasonCount
from lake_client.errors import (
    AuthenticationFailed,
    IdentityError,
    JobError,
    from_psycopg,
)
from lake_client.queries import sql
from lake_client.session import RetryPolicy, Row, fetch

# Importers of the client find the ingest results and the retry policy here.
__all__ = ["BatchResult", "IngestSummary", "Lake", "ReasonCount", "RetryPolicy", "Row"]


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
        retry: RetryPolicy | None = None,
        read_dsn: str | None = None,
    ) -> None:
        # The read methods (row_counts, similar) go to read_dsn when set: a hot standby, where
        # the identity is a token the primary signed (lake.identity_token). Default:
        # LAKE_READ_DSN when the DSN comes from the settings too. It must log in as the same
        # role as `dsn` (the token names its login role).
        self.read_dsn = read_dsn
        if dsn is None:
            settings = load_settings()
            dsn = settings.dsn()
            self.read_dsn = read_dsn if read_dsn is not None else settings.read_dsn
        self.dsn = dsn
        self.application_name = application_name
        self.work_mem = work_mem
        self.connect_timeout = connect_timeout
        # For transient failures of a batch (unless ingest is given its own) and of the set-up
        # of a connection.
        self.retry = retry or RetryPolicy()
        self._conn: psycopg.Connection[Row] | None = None
        # The session identity to establish again after reconnecting: (query name, params).
        self._session_identity: tuple[str, dict[str, str]] | None = None
        self._read_conn: psycopg.Connection[Row] | None = None
        # The signed identity token for the reader, and when to ask for a new one.
        self._token: tuple[str, datetime] | None = None

    # -- connection -------------------------------------------------------------------------

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    @property
    def conn(self) -> psycopg.Connection[Row]:
        """The open connection (made on first use, and again after a failure)."""
        if self._conn is None or self._conn.closed:
            self._conn = self.retry.run(self._open)
        return self._conn

    def _open(self, attempt: int) -> psycopg.Connection[Row]:
        """A new connection, set up: settings, then the session identity again if there is one.
        A failure of the set-up (its COMMIT's reply lost, say) closes it; self.retry retries."""
        del attempt
        try:
            conn = psycopg.connect(
                self.dsn, row_factory=dict_row, connect_timeout=self.connect_timeout
            )
        except psycopg.OperationalError as exc:
            raise from_psycopg(exc, connecting=True) from exc
        try:
            conn.execute(
                sql("session_setup"), {"work_mem": self.work_mem, "app": self.application_name}
            )
            if self._session_identity is not None:
                name, params = self._session_identity
                conn.execute(sql(name), params)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        return conn

    def _query(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        return fetch(self, name, params)

    # How long before its expiry a token is replaced, and the lifetime asked for.
    TOKEN_MARGIN = timedelta(seconds=30)
    TOKEN_TTL = "5 minutes"

    def _identity_token(self) -> str:
        """This session's identity as a token the primary signed (lake.identity_token), kept
        until shortly before it expires; asking for one needs an identity (IdentityError)."""
        now = datetime.now(UTC)
        if self._token is None or self._token[1] - self.TOKEN_MARGIN <= now:
            row = self._query("identity_token", {"ttl": self.TOKEN_TTL})[0]
            self._token = (str(row["token"]), row["expires_at"])
        return self._token[0]

    def _read(
        self, statement: str | pgsql.SQL | pgsql.Composed, params: dict[str, Any] | None = None
    ) -> list[Row]:
        """Run a read in a transaction of its own: on the reader (read_dsn) under this
        session's identity token when one is set, else on the primary connection."""
        if self.read_dsn is None:
            conn = self.conn
            try:
                rows = conn.execute(statement, params or {}).fetchall()
                conn.commit()
                return rows
            except psycopg.Error as exc:
                self.recover()
                raise from_psycopg(exc) from exc
        read_dsn = self.read_dsn

        def attempt(n: int) -> list[Row]:
            del n
            token = self._identity_token()
            if self._read_conn is None or self._read_conn.closed:
                self._read_conn = psycopg.connect(
                    read_dsn, row_factory=dict_row, connect_timeout=self.connect_timeout
                )
            reader = self._read_conn
            reader.execute(sql("use_identity_token"), {"token": token})
            rows = reader.execute(statement, params or {}).fetchall()
            reader.commit()
            return rows

        # A standby may cancel a read that conflicts with what it replays (SQLSTATE 40001),
        # or be restarted: transient, so tried again by the retry policy.
        return self.retry.run(attempt, self._recover_reader)

    def _recover_reader(self) -> None:
        reader = self._read_conn
        if reader is None:
            return
        if reader.closed or reader.broken:
            self._read_conn = None
        else:
            reader.rollback()

    def recover(self) -> None:
        """After a failed statement: roll back its transaction, or forget a broken connection
        (the next use makes a new one)."""
        if self._conn is None:
            return
        if self._conn.closed or self._conn.broken:
            self._conn = None
        else:
            self._conn.rollback()

    def cancel(self) -> None:
        """Ask the server to cancel the statement this session's connection is running, if any.
        Safe from another thread (a parallel load's Ctrl-C): the request goes on a connection
        of its own, and the statement's transaction rolls back."""
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=5)

    def fork(self) -> Lake:
        """Another Lake to the same database, with the same settings and session identity (for
        loading in parallel). It connects on first use; close it when done."""
        other = Lake(
            self.dsn,
            application_name=self.application_name,
            work_mem=self.work_mem,
            connect_timeout=self.connect_timeout,
            retry=self.retry,
            read_dsn=self.read_dsn,
        )
        other._session_identity = self._session_identity
        return other

    # -- identity ---------------------------------------------------------------------------

    def act_as(self, user_id: str, scope: str = "session") -> None:
        """Act for a lake user (administrators, and services after authenticate()). With scope
        "session" (the default here) the client re-establishes it after reconnecting."""
        params = {"user_id": user_id, "scope": scope}
        self._token = None
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
        self._token = None
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

    def authenticate_cert(self, scope: str = "session") -> str:
        """Establish this session's identity from the TLS client certificate its connection
        presented (``sslcert``/``sslkey`` in the DSN, a certificate from ``lake certs issue``):
        the service it was issued to, with its scopes. Returns the service's id; raises
        AuthenticationFailed when the lake refuses it (none, unknown, revoked, expired)."""
        params = {"scope": scope}
        self._token = None
        service = self._query("authenticate_cert", params)[0]["service"]
        if service is None:
            raise AuthenticationFailed(
                "authentication failed: this connection presented no valid service certificate",
                hint="connect over TLS with sslcert and sslkey of a certificate from `lake certs "
                "issue` (or renewed since); `lake certs list` shows which are active",
            )
        if scope == "session":
            self._session_identity = ("authenticate_cert", params)
        return str(service)

    def authenticate_oidc(
        self,
        token: str,
        nonce: str,
        scope: str = "session",
        refresh: Callable[[], object] | None = None,
    ) -> str:
        """Sign in with an OpenID Connect ID token, which the lake checks itself (signature,
        issuer, audience, expiry, the nonce the caller put in its authorization request); the
        session becomes the lake user linked to the token's subject. Returns the user's id;
        raises AuthenticationFailed for a token the lake refuses. When the lake does not know
        the token's signing key (the provider rotated its keys), ``refresh`` (for example an
        administrator's ``Lake.refresh_oidc_provider``) runs once and the sign-in is tried
        again."""
        params = {"token": token, "nonce": nonce, "scope": scope}
        hints: list[str] = []

        def keep_hint(diag: psycopg.errors.Diagnostic) -> None:
            if diag.message_hint:
                hints.append(diag.message_hint)

        conn = self.conn
        conn.add_notice_handler(keep_hint)
        try:
            self._token = None
            user = self._query("authenticate_oidc", params)[0]["user_id"]
        finally:
            conn.remove_notice_handler(keep_hint)
        if user is None and refresh is not None and any("rotated its keys" in h for h in hints):
            refresh()
            return self.authenticate_oidc(token, nonce, scope)
        if user is None:
            raise AuthenticationFailed(
                "sign-in failed: the lake refused the ID token",
                hint=hints[0] if hints else "the audit log (auth.failure) says why",
            )
        if scope == "session":
            self._session_identity = ("authenticate_oidc", params)
        return str(user)

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

    def link_oauth(
        self,
        provider: str,
        subject: str,
        user_id: str,
        scopes: Sequence[str] = ("read", "write"),
    ) -> None:
        """Link an OAuth identity to a lake user (scopes: of sessions signed in through it)."""
        self._query(
            "link_oauth",
            {"provider": provider, "subject": subject, "user_id": user_id, "scopes": list(scopes)},
        )

    def issue_service_cert(self, service: str, scopes: Sequence[str] = ("read", "write")) -> Row:
        """A service's first client certificate (7 days) signed by the lake's CA: serial,
        not_after, certificate, private_key (returned only now), ca_certificate. Administrators."""
        return self._query("issue_service_cert", {"service": service, "scopes": list(scopes)})[0]

    def renew_service_cert(self) -> Row:
        """A new certificate for the service whose certificate this connection presented (as
        :meth:`issue_service_cert` returns it, with ``service``)."""
        return self._query("renew_service_cert")[0]

    def revoke_service_cert(self, which: str) -> int:
        """Revoke a certificate (its serial) or all of a service's (its id); returns how many."""
        return int(self._query("revoke_service_cert", {"which": which})[0]["revoked"])

    def service_certs(self, service: str | None = None) -> list[Row]:
        """The services' certificates (never their keys): serial, service, scopes, validity,
        state (active, expired, revoked)."""
        return self._query("service_certs", {"service": service})

    def set_oidc_provider(
        self, name: str, issuer: str, audiences: Sequence[str], jwks: dict[str, Any]
    ) -> Row:
        """Add an OpenID Connect provider, or replace its issuer, audiences and keys."""
        params = {"name": name, "issuer": issuer, "audiences": list(audiences), "jwks": Jsonb(jwks)}
        return self._query("set_oidc_provider", params)[0]

    def oidc_providers(self, name: str | None = None) -> list[Row]:
        """The OpenID Connect providers (name, issuer, audiences, fetched_at, keys)."""
        return self._query("oidc_providers", {"name": name})

    def refresh_oidc_provider(self, name: str, audiences: Sequence[str] | None = None) -> Row:
        """Fetch a provider's keys again (its discovery document, then its JWKS) and store them;
        with audiences, replace those too. Administrators."""
        known = self.oidc_providers(name)
        if not known:
            raise IdentityError(
                f"no OpenID Connect provider {name!r}", hint="add it first: lake oidc add"
            )
        issuer = str(known[0]["issuer"])
        aud = list(audiences) if audiences else list(known[0]["audiences"])
        return self.set_oidc_provider(name, issuer, aud, oidc.fetch_keys(issuer))

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

    def evolve_schema(
        self, dataset: str, json_schema: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        """Put a new version of the dataset's JSON Schema in force (lake.evolve_schema); with
        dry_run, only report how many stored rows it would reject, with up to 5 examples."""
        rows = self._query(
            "evolve_schema",
            {"dataset": dataset, "json_schema": Jsonb(json_schema), "dry_run": dry_run},
        )
        return dict(rows[0]["report"])

    def drop_dataset(
        self, dataset: str, archive: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Drop the dataset (lake.drop_dataset): refused while it holds rows unless archive
        (every month archived and verified first) or force."""
        rows = self._query("drop_dataset", {"dataset": dataset, "archive": archive, "force": force})
        return dict(rows[0]["report"])

    def datasets(self) -> list[Row]:
        return self._query("datasets")

    def dataset_schema(self, dataset: str) -> dict[str, Any] | None:
        """The JSON Schema of the dataset's current version, None if there is no such dataset."""
        rows = self._query("dataset_schema", {"dataset": dataset})
        return dict(rows[0]["json_schema"]) if rows else None

    def dataset_source_formats(self) -> list[Row]:
        """The datasets that declare a source format: dataset, source_format, reader (how a file
        of it is read: lake_client.exports) and member_pattern (its members in a zip)."""
        return self._query("dataset_source_formats")

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
            self.recover()
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
        rows = self._read(stmt)
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
        jobs: int | None = None,
    ) -> IngestSummary:
        """Stream records into a dataset with COPY, `batch_size` records per transaction.

        `records` are Record objects (from lake_client.records), dicts, or JSON text as str or
        bytes. Each batch carries an id chosen here, so a batch retried after a lost
        acknowledgement is recognised by the database instead of stored twice. `on_batch` is
        called after each batch with its result and the bytes it carried.

        With `batch_namespace`, batch i gets the id uuid5(namespace, i) instead of a random one:
        ingesting the same records again with the same namespace (and batch size) then skips
        every batch that was committed before, which makes a re-run after a crash safe.

        `jobs` sessions load batches side by side, each batch still one transaction of its own
        (their order in the database is then not the order of the input; batch ids do not
        depend on it). Validation is CPU work in the server, so the default (None) is one
        session per server core (server_cores()); jobs=1 loads in this session alone, and so
        does a load of a single batch. The first failure stops every session: the batches
        that committed are those `on_batch` was called for, and the failure is raised.
        """
        return copy_ingest.ingest(
            self,
            dataset,
            records,
            batch_size=batch_size,
            for_user=for_user,
            origin=origin,
            retry=retry or self.retry,
            on_batch=on_batch,
            batch_namespace=batch_namespace,
            jobs=jobs,
        )

    def server_cores(self) -> int:
        """The CPU cores the server may use (lake.server_cores): how many sessions ingest
        loads with by default."""
        return copy_ingest.server_cores(self)

    # -- embeddings and similarity search ----------------------------------------------------

    def declare_embeddings(
        self,
        dataset: str,
        model: str,
        dimensions: int,
        metric: str = "cosine",
        *,
        ef_search: int | None = None,
        iterative_scan: str | None = None,
        max_scan_tuples: int | None = None,
        exact_below: int | None = None,
    ) -> dict[str, Any]:
        """Declare an embedding model of a dataset (lake.declare_embeddings, administrators);
        declaring it again changes only the search settings given."""
        return vectors.declare(
            self,
            dataset,
            model,
            dimensions,
            metric,
            ef_search=ef_search,
            iterative_scan=iterative_scan,
            max_scan_tuples=max_scan_tuples,
            exact_below=exact_below,
        )

    def embedding_models(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """The declared embedding models (lake.embedding_models)."""
        return vectors.models(self, dataset)

    def put_embeddings(
        self,
        dataset: str,
        model: str,
        items: Iterable[tuple[int, Any]],
        *,
        batch_size: int = vectors.BATCH_SIZE,
        cache: LakeCache | None = None,
    ) -> int:
        """Write (record id, vector) pairs for the session user's records of `dataset`, in
        batches of `batch_size` by binary COPY, each an upsert per record and model
        (lake.put_embeddings); vectors are numpy arrays, pgvector Vectors or lists of numbers.
        With `cache`, the user's cached searches are invalidated after each batch. Returns how
        many were written."""
        return vectors.put_embeddings(
            self, dataset, model, items, batch_size=batch_size, cache=cache
        )

    def similar(
        self,
        dataset: str,
        query: Any,
        k: int = 10,
        *,
        from_ts: datetime | str | None = None,
        to_ts: datetime | str | None = None,
        filter: dict[str, Any] | None = None,
        model: str | None = None,
        cache: LakeCache | None = None,
    ) -> list[dict[str, Any]]:
        """The session user's `k` records nearest to `query` (lake.similar): id, ts, distance,
        doc, nearest first; only in [from_ts, to_ts) and containing `filter` when given. With
        `cache`, read through Redis (invalidated by the bridge after the user's changes and by
        put_embeddings)."""
        return vectors.similar(
            self,
            dataset,
            query,
            k,
            from_ts=from_ts,
            to_ts=to_ts,
            filter=filter,
            model=model,
            cache=cache,
        )

    # -- time series -------------------------------------------------------------------------

    def series(
        self,
        dataset: str,
        bucket: str | timedelta,
        from_ts: datetime | str,
        to_ts: datetime | str,
        field: str | None = None,
        agg: str = "count",
        *,
        fill: bool = False,
        timezone: str = "UTC",
    ) -> list[Row]:
        """The session user's records of `dataset` in buckets of `bucket` ('1 day', '1 month',
        a timedelta) over [from_ts, to_ts) (lake.series): dicts of bucket (its start, RFC 3339
        in UTC), records and value, the aggregate `agg` (count, sum, avg, min, max, stddev,
        first, last) of the numeric `field` (a path with dots; None: the records are counted).
        With `fill`, every bucket of the range, empty ones too. Bad arguments raise InputError."""
        return self._query(
            "series",
            {
                "dataset": dataset,
                "bucket": bucket,
                "from_ts": from_ts,
                "to_ts": to_ts,
                "field": field,
                "agg": agg,
                "fill": fill,
                "timezone": timezone,
            },
        )

    # -- places ------------------------------------------------------------------------------

    def declare_coordinates(
        self, dataset: str, lat_field: str = "lat", lon_field: str = "lon", scale: float = 1
    ) -> dict[str, Any]:
        """Declare where the records of `dataset` keep their coordinates, and the scale to
        degrees (1e-7 for E7 integers): lake.declare_coordinates, administrators."""
        return places.declare(self, dataset, lat_field, lon_field, scale)

    def postgis_version(self) -> str:
        """The version of the PostGIS library the server runs, e.g. 3.5.2."""
        return places.postgis_version(self)

    def near(
        self,
        dataset: str,
        lat: float,
        lon: float,
        radius_m: float,
        *,
        from_ts: datetime | str | None = None,
        to_ts: datetime | str | None = None,
        max_rows: int = 1000,
    ) -> list[dict[str, Any]]:
        """The session user's records within `radius_m` metres of (lat, lon), nearest first
        (lake.near): id, ts, distance_m, place_lat, place_lon, doc; only in [from_ts, to_ts)
        when given."""
        return places.near(
            self, dataset, lat, lon, radius_m, from_ts=from_ts, to_ts=to_ts, max_rows=max_rows
        )

    def within(
        self,
        dataset: str,
        geojson: dict[str, Any],
        *,
        from_ts: datetime | str | None = None,
        to_ts: datetime | str | None = None,
        max_rows: int = 10000,
    ) -> list[dict[str, Any]]:
        """The session user's records whose point lies in a GeoJSON (Multi)Polygon, in time
        order (lake.within): id, ts, place_lat, place_lon, doc."""
        return places.within(
            self, dataset, geojson, from_ts=from_ts, to_ts=to_ts, max_rows=max_rows
        )

    def stay_points(
        self,
        dataset: str,
        day: date | str,
        *,
        min_minutes: int = 15,
        radius_m: float = 100,
        time_zone: str = "UTC",
    ) -> list[dict[str, Any]]:
        """Where the session user stayed for `min_minutes` or more within `radius_m` on `day`
        (lake.stay_points): started_at, ended_at, minutes, lat, lon, points."""
        return places.stay_points(
            self, dataset, day, min_minutes=min_minutes, radius_m=radius_m, time_zone=time_zone
        )

    # -- a person's rights -------------------------------------------------------------------

    def export_user(
        self, path: str | os.PathLike[str], user: str | None = None, *, fetch: int = 5000
    ) -> dict[str, Any]:
        """Write everything the lake holds about a person to a zip of JSON Lines with a
        manifest (lake.export_user, streamed): the session's user, or `user` (administrators).
        Returns the manifest. See lake_client.export."""
        return export.export_user(self, path, user, fetch=fetch)

    def request_erasure(self, user: str | None = None, reason: str | None = None) -> int:
        """Ask for a person's erasure (lake.request_erasure): the session's user's own, or
        `user`'s (administrators). An administrator performs it. Returns the request's id."""
        return int(
            self._query("request_erasure", {"user_id": user, "reason": reason})[0]["erasure_id"]
        )

    def erase_user(self, user: str, reason: str) -> dict[str, Any]:
        """Erase a person from every store of the database, committed (lake.erase_user,
        administrators); returns the erasure report. :meth:`erase` finishes it too."""
        report: dict[str, Any] = self._query("erase_user", {"user_id": user, "reason": reason})[0][
            "report"
        ]
        return report

    def finish_erasure(self, erasure_id: int) -> dict[str, Any]:
        """Delete the archive files an erasure superseded and close it once every bridge has
        taken the person out of Redis (lake.finish_erasure); returns the report as it stands."""
        report: dict[str, Any] = self._query("finish_erasure", {"erasure_id": erasure_id})[0][
            "report"
        ]
        return report

    def erase(self, user: str, reason: str, *, wait: float = 30.0) -> dict[str, Any]:
        """`lake erase`: erase the person, then finish the erasure, waiting up to `wait`
        seconds for every bridge to pass its change event. The report's status is done, or
        erased with redis.waiting_for naming the bridges still behind."""
        report = self.erase_user(user, reason)
        deadline = time.monotonic() + wait
        while True:
            self._query("seal")  # the event takes its place in the change log
            report = self.finish_erasure(int(report["erasure_id"]))
            if report["status"] == "done" or time.monotonic() >= deadline:
                return report
            time.sleep(0.2)

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

    def quarantine_decide(
        self,
        action: str,
        *,
        dataset: str | None = None,
        batch_id: str | None = None,
        user_id: str | None = None,
        rule: str | None = None,
        received_from: datetime | None = None,
        received_before: datetime | None = None,
        dry_run: bool = True,
        note: str | None = None,
        all_items: bool = False,
    ) -> dict[str, Any]:
        """Release or discard (`action`) every pending item matching the filters
        (lake.quarantine_decide). A dry run unless dry_run=False: it changes nothing and
        reports what the decision does (outcomes, by_rule, batches, invalid)."""
        report: dict[str, Any] = self._query(
            "quarantine_decide",
            {
                "action": action,
                "dataset": dataset,
                "batch_id": batch_id,
                "user_id": user_id,
                "rule": rule,
                "received_from": received_from,
                "received_before": received_before,
                "dry_run": dry_run,
                "note": note,
                "all_items": all_items,
            },
        )[0]["report"]
        return report

    def quarantine_correct(self, item_id: int, corrected: Any, note: str | None = None) -> Row:
        """Release an item as its corrected record (lake.quarantine_correct): outcome stored,
        archived, invalid (the item stays pending), no_owner or already_corrected."""
        out: Row = self._query(
            "quarantine_correct", {"id": item_id, "corrected": Jsonb(corrected), "note": note}
        )[0]["outcome"]
        return out

    def quarantine_export(
        self,
        path: str | os.PathLike[str],
        *,
        dataset: str | None = None,
        batch_id: str | None = None,
        user_id: str | None = None,
        rule: str | None = None,
        received_from: datetime | None = None,
        received_before: datetime | None = None,
    ) -> int:
        """Write the pending items matching the filters to `path` as JSON Lines, to be fixed
        and imported again (quarantine_import); returns how many. See
        lake_client.quarantine_files."""
        filters = {
            "dataset": dataset,
            "batch_id": batch_id,
            "user_id": user_id,
            "rule": rule,
            "received_from": received_from,
            "received_before": received_before,
        }
        return quarantine_files.export_pending(self, path, filters)

    def quarantine_import(
        self, path: str | os.PathLike[str], note: str | None = None
    ) -> dict[str, Any]:
        """Send each fixed line of an exported file as a correction of its item; a summary of
        the outcomes. Importing the same file again changes nothing."""
        return quarantine_files.import_corrections(self, path, note)
