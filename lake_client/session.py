"""What the client's parts need of a connection to the lake: the session interface (Lake is one),
named queries run on it, and the one retry policy for transient failures (batches and the
connection set-up)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import psycopg

from lake_client.errors import LakeError, from_psycopg, is_transient
from lake_client.queries import sql

Row = dict[str, Any]
T = TypeVar("T")


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after a transient failure (a lost connection, a serialization failure, a
    deadlock): `attempts` in all, waiting `first_delay` seconds before the second and doubling
    each time."""

    attempts: int = 3
    first_delay: float = 1.0

    def run(self, attempt: Callable[[int], T], recover: Callable[[], None] = _nothing) -> T:
        """`attempt(n)` for n = 1, 2, ... until it returns. After a database error `recover()`
        puts the session right; a transient one is tried again while attempts are left, any
        other (and the last) is raised as a LakeError."""
        n = 1
        while True:
            try:
                return attempt(n)
            except psycopg.Error as exc:
                recover()
                if not is_transient(exc) or n >= self.attempts:
                    raise from_psycopg(exc) from exc
                time.sleep(self.first_delay * 2 ** (n - 1))
                n += 1
            except LakeError:
                recover()
                raise


class Session(Protocol):
    """A connection to the lake with an identity, as the COPY engine (lake_client.copy_ingest)
    uses it. lake_client.client.Lake is one."""

    @property
    def conn(self) -> psycopg.Connection[Row]:
        """The open connection, set up and with the session's identity (made again after a
        failure); raises a LakeError when that fails."""
        ...

    def recover(self) -> None:
        """After a failed statement: roll back, or forget a broken connection."""
        ...

    def cancel(self) -> None:
        """Ask the server to cancel the statement running on this session, if any (from another
        thread)."""
        ...

    def fork(self) -> Session:
        """Another session to the same lake with the same settings and identity."""
        ...

    def close(self) -> None: ...


def fetch(session: Session, name: str, params: dict[str, Any] | None = None) -> list[Row]:
    """Run the named query (lake_client/queries) in a transaction of its own; its rows."""
    conn = session.conn
    try:
        rows = conn.execute(sql(name), params or {}).fetchall()
        conn.commit()
        return rows
    except psycopg.Error as exc:
        session.recover()
        raise from_psycopg(exc) from exc
