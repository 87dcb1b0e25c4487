"""One exception root for the client; database errors are mapped here and nowhere else.

The database raises SQLSTATEs of the lake's own class ``LK`` (listed in the README) so the
client can tell a bad dataset name from a missing one without parsing messages.
"""

from __future__ import annotations

import psycopg


class LakeError(Exception):
    """Root of every error the lake client raises."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, sqlstate: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.sqlstate = sqlstate

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\nhint: {self.hint}" if self.hint else text


class ConfigurationError(LakeError):
    """The lake is not set up the way the command needs (no cluster, no migrations...)."""


class ClusterError(LakeError):
    """Starting, stopping or inspecting the embedded cluster failed."""


class ConnectionFailed(LakeError):
    """PostgreSQL or Redis could not be reached."""


class InputError(LakeError):
    """An input file or argument cannot be read as records."""


class CacheError(LakeError):
    """The Redis cache could not be read or written, or a key part was invalid."""


class JobError(LakeError):
    """A scheduled job is unknown or cannot run the way it was asked to."""


class DatasetError(LakeError):
    """A dataset name, schema or option was rejected."""


class UnknownDataset(DatasetError):
    """The dataset does not exist."""


class DatasetExists(DatasetError):
    """A dataset of that name exists already."""


class IdentityError(LakeError):
    """No lake user is established for this session, or the caller may not act as one."""


class AuthenticationFailed(IdentityError):
    """The lake refused an API key (malformed, unknown, revoked, expired or disabled owner)."""


class QuarantineError(LakeError):
    """A quarantine decision was refused (unknown item, already decided, still invalid)."""


class BatchError(LakeError):
    """A batch could not be recorded consistently (count or checksum mismatch, reused id)."""


class QuotaExceeded(LakeError):
    """A quota of the user on a dataset would be exceeded: nothing of the statement was written."""


class CheckpointError(LakeError):
    """A checkpoint or rollback was refused (unknown checkpoint, not among the last 5...)."""


class LifecycleError(LakeError):
    """Retention or restore refused: no such archive, an archive that does not verify, a month
    that is in the lake already."""


class BridgeError(LakeError):
    """The bridge cannot run as asked (an invalid name or option)."""


class StreamError(BridgeError):
    """The Redis stream holds entries that no lake bridge of this database wrote."""


class DatabaseError(LakeError):
    """Any other error reported by PostgreSQL."""


# Our own SQLSTATEs (class LK), raised by the functions in sql/.
_LAKE_SQLSTATES: dict[str, type[LakeError]] = {
    "LK001": DatasetError,  # invalid dataset name
    "LK002": DatasetExists,
    "LK003": UnknownDataset,
    "LK004": DatasetError,  # invalid JSON Schema
    "LK005": DatasetError,  # invalid option
    "LK006": InputError,  # records are not a JSON array
    "LK010": IdentityError,  # no lake user in this session
    "LK011": IdentityError,  # invalid user id, identity scope, key scope or expiry
    "LK012": IdentityError,  # no such user / key / link, or not permitted to act for that user
    "LK013": IdentityError,  # the user exists already
    "LK014": IdentityError,  # the identity lacks the write scope
    "LK015": IdentityError,  # not a member of lake_pii_reader
    "LK016": DatabaseError,  # personal identifiers sealed with a retired PII key (an old copy)
    "LK020": QuarantineError,  # no such quarantine item
    "LK021": QuarantineError,  # already decided
    "LK022": QuarantineError,  # still invalid
    "LK023": QuarantineError,  # a bulk decision without a filter
    "LK030": BatchError,  # batch reused / already committed
    "LK031": BatchError,  # count mismatch
    "LK032": QuotaExceeded,  # a quota (stored bytes, quarantined bytes, records an hour)
    "LK040": DatasetError,  # an update would make stored records invalid
    "LK050": DatabaseError,  # the audit log is append-only
    "LK051": DatabaseError,  # the lake's commit-time triggers were made IMMEDIATE
    "LK052": DatabaseError,  # a view over user_data would bypass row-level security
    "LK060": LakeError,  # unknown setting or invalid value
    "LK062": LifecycleError,  # no archive of that month to restore
    "LK063": LifecycleError,  # the run of partitions is broken / rows inside the window
    "LK064": LifecycleError,  # the month to restore is in the lake
    "LK065": LifecycleError,  # the archive does not verify
    "LK070": CheckpointError,  # no such checkpoint of that dataset
    "LK071": CheckpointError,  # not one of the dataset's last 5 checkpoints
    "LK072": CheckpointError,  # rollback outside READ COMMITTED
    "LK073": CheckpointError,  # invalid checkpoint label, keep interval or gap
    "LK074": CheckpointError,  # the rollback's transaction changed the dataset itself
    "LK075": CheckpointError,  # transaction ids of another cluster (dump restored, upgrade)
    "LK080": JobError,  # no such job
    "LK081": JobError,  # a statement job (vacuum, reindex) cannot run inside the procedure
    "LK091": InputError,  # an embedding (or a query vector) of the wrong dimensions
    "LK092": DatasetError,  # the dataset declares no such embedding model
    "LK093": DatasetError,  # invalid embedding model, or its dimensions / metric changed
    "LK094": InputError,  # embeddings for records that are not the session user's
    "LK095": DatasetError,  # the dataset declares no coordinates
    "LK096": DatasetError,  # invalid coordinates declared (fields, scale)
    "LK097": InputError,  # a point, radius, area, day or time zone to search by is invalid
    "LK120": InputError,  # lake.series: invalid bucket, range or time zone
    "LK121": InputError,  # lake.series: invalid field or aggregate (not on the allow-list)
}

# Check constraints that guard a value the caller chose: the error its violation is, and the rule.
BRIDGE_NAME_RULE = "a bridge's name is 1 to 64 letters (A-Z, a-z), digits, '_', '.' or '-'"
_CONSTRAINTS: dict[str, tuple[type[LakeError], str]] = {
    "bridge_cursors_name_check": (BridgeError, BRIDGE_NAME_RULE),
}

# Errors after which a retry of the same batch may succeed.
RETRYABLE_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout while making a partition)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "08000",
        "08003",
        "08006",
        "08001",
        "08004",
    }
)


def is_transient(exc: psycopg.Error) -> bool:
    """Whether the same work may succeed when tried again (on a new connection if need be)."""
    return isinstance(exc, psycopg.OperationalError) or (exc.sqlstate or "") in RETRYABLE_SQLSTATES


def from_sqlstate(sqlstate: str | None, message: str, hint: str | None = None) -> LakeError:
    """The lake's error for a SQLSTATE reported from elsewhere (the gRPC service's details)."""
    return _LAKE_SQLSTATES.get(sqlstate or "", DatabaseError)(message, hint=hint, sqlstate=sqlstate)


def from_psycopg(exc: psycopg.Error, *, connecting: bool = False) -> LakeError:
    """Translate a psycopg error into the lake's hierarchy, keeping message and hint.
    `connecting`: it came from psycopg.connect (the server did not let us in)."""
    diag = getattr(exc, "diag", None)
    sqlstate = getattr(exc, "sqlstate", None)
    message = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
    detail = diag.message_detail if diag else None
    hint = diag.message_hint if diag else None
    if detail:
        message = f"{message}\n{detail}"
    if connecting and isinstance(exc, psycopg.OperationalError):
        return ConnectionFailed(
            f"cannot connect to the lake: {str(exc).strip()}",
            hint="is it running? `lake status` tells; `lake up` starts the embedded one",
        )
    if isinstance(exc, psycopg.OperationalError) and sqlstate is None:
        return ConnectionFailed(message, hint=hint or "is the lake running? try `lake status`")
    constraint = diag.constraint_name if diag else None
    if constraint in _CONSTRAINTS:
        cls, rule = _CONSTRAINTS[constraint]
        return cls(message, hint=rule, sqlstate=sqlstate)
    cls = _LAKE_SQLSTATES.get(sqlstate or "", DatabaseError)
    return cls(message, hint=hint, sqlstate=sqlstate)
