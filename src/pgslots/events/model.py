"""The types of the events pipeline: what a reader yields, and the `Incident` it adds up to."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Literal


class Category(str, enum.Enum):
    """What kind of connection failure a message reports (domain reference §1.3, §2, §8)."""

    TOO_MANY_CLIENTS = "too_many_clients"  # 53300 "sorry, too many clients already"
    RESERVED_SUPERUSER = "reserved_superuser"  # "...reserved for non-replication superuser..." / "...SUPERUSER attribute"
    RESERVED_ROLE = (
        "reserved_role"  # PG16+ "...privileges of the "pg_use_reserved_connections" role"
    )
    ROLE_LIMIT = "role_limit"  # too many connections for role "x"
    DATABASE_LIMIT = "database_limit"  # too many connections for database "x"
    SLOTS_UNSPECIFIED = (
        "slots_unspecified"  # SQLSTATE 53300 in a wording we do not know (translated server)
    )
    WALSENDER_LIMIT = (
        "walsender_limit"  # number of requested standby connections exceeds max_wal_senders
    )
    SERVER_NOT_READY = "server_not_ready"  # 57P03 starting up / shutting down / recovery
    POOL_TIMEOUT = "pool_timeout"  # psycopg_pool PoolTimeout / TooManyRequests
    PGBOUNCER_MAX_CLIENT_CONN = "pgbouncer_max_client_conn"
    PGBOUNCER_QUERY_WAIT_TIMEOUT = "pgbouncer_query_wait_timeout"
    PGBOUNCER_LOGIN_FAILED = "pgbouncer_login_failed"  # server login has been failing / retry
    PGBOUNCER_OTHER = "pgbouncer_other"  # other "pooler error" lines
    STALE_CONNECTION = "stale_connection"  # server closed the connection unexpectedly
    NETWORK = "network"  # refused, timeout, DNS
    OTHER = "other"

    @property
    def is_slot_exhaustion(self) -> bool:
        """The server (or a role/db limit) had no slot for this connection."""
        return self in SLOT_EXHAUSTION


SLOT_EXHAUSTION = frozenset(
    {
        Category.TOO_MANY_CLIENTS,
        Category.RESERVED_SUPERUSER,
        Category.RESERVED_ROLE,
        Category.ROLE_LIMIT,
        Category.DATABASE_LIMIT,
        Category.SLOTS_UNSPECIFIED,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an event came from: format, file, and the 1-based line (text logs) or row
    (JSON/CSV records) number."""

    format: str
    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One failed connection as an input recorded it, or a pre-counted group of them
    (`count` > 1) for aggregated inputs such as New Relic FACET/TIMESERIES results or the
    fast path of the server-log reader.

    Readers leave `categories` empty; the pipeline fills it from `taxonomy.classify`, so the
    reading and the classifying can each be tested alone. A message that carries several
    attempts (psycopg >= 3.2.8) keeps every category it mentions.
    """

    ts: dt.datetime  # UTC, timezone-aware
    message: str
    source: SourceRef
    count: int = 1
    categories: tuple[Category, ...] = ()
    sqlstate: str | None = None
    error_class: str | None = None  # "django.db.utils:OperationalError", as New Relic writes it
    transaction: str | None = None
    host: str | None = None
    app: str | None = None
    db: str | None = None
    user: str | None = None
    client: str | None = None  # client address as the server saw it
    last_ts: dt.datetime | None = None  # a pre-counted group's latest member, when later than `ts`

    @property
    def category(self) -> Category:
        """The primary category: the first one found, OTHER when none."""
        return self.categories[0] if self.categories else Category.OTHER


# -- the incident -------------------------------------------------------------------------------

ShapeLabel = Literal["spike_and_drop", "sustained_growth", "plateau", "isolated", "irregular"]
"""`irregular` is the honest answer when none of the four shapes' rules holds (a curve that
rises and falls by halves, say): a label forced onto such a curve would mislead."""

FacetName = Literal["transaction", "host", "app", "db", "user", "client", "category", "error_class"]


@dataclasses.dataclass(frozen=True)
class BucketCount:
    start: dt.datetime
    total: int
    by_category: dict[str, int]  # an event counts once under each category it carries
    by_combination: dict[str, int] = dataclasses.field(default_factory=dict)  # adds up to total


@dataclasses.dataclass(frozen=True)
class FacetRow:
    value: str
    count: int
    share: float  # of all events in the window, 0..1


@dataclasses.dataclass(frozen=True)
class Shape:
    """The curve's label, with the bucket counts it was read from and the rule that fired,
    so the user can check the label instead of trusting it."""

    label: ShapeLabel
    rule: str
    counts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Note:
    """One interpretation: a short key (stable, for JSON consumers), the sentence, and how
    many events (and which share) it speaks for."""

    key: str
    text: str
    count: int
    share: float


@dataclasses.dataclass(frozen=True)
class InputSummary:
    """What one input file gave: its detected format, events, rows read, lines skipped."""

    path: str
    format: str
    events: int
    records: int
    skipped: int = 0
    skipped_examples: tuple[SourceRef, ...] = ()
    notes: tuple[str, ...] = ()
    outside_window: int = 0  # events read but left out by --since/--until


@dataclasses.dataclass(frozen=True)
class InputGrid:
    """The time grid a pre-bucketed input came with (New Relic TIMESERIES): its buckets
    start at `begin` and are `bucket_seconds` wide, so the report's must not be finer or
    shifted against it."""

    begin: dt.datetime
    bucket_seconds: int | None = None


@dataclasses.dataclass(frozen=True)
class BackendPoint:
    """Client backends at a moment, rebuilt from connection/disconnection log lines."""

    ts: dt.datetime
    backends: int


@dataclasses.dataclass(frozen=True)
class ServerLogSummary:
    """What a PostgreSQL server log adds beyond the rejections themselves."""

    backends_over_time: tuple[BackendPoint, ...] = ()
    peak_backends: int | None = None
    peak_at: dt.datetime | None = None
    backends_by: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=dict
    )  # facet -> value -> peak
    rejections_by: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=dict
    )  # role/db/client -> value -> n
    inferred_version: str | None = (
        None  # e.g. "<= 15" from the wording, or "18.6" from the startup line
    )
    inferred_reserved: tuple[str, ...] = ()  # sentences about reserved-slot configuration
    caveats: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Incident:
    """The incident picture: when, how many, which messages, which transactions, what shape."""

    window_start: dt.datetime | None
    window_end: dt.datetime | None
    bucket_seconds: int
    total: int
    buckets: tuple[BucketCount, ...]
    by_category: dict[str, int]  # an event counts once under each category it carries
    by_combination: dict[
        str, int
    ]  # "reserved_superuser+too_many_clients": exact families, add up to total
    facets: dict[str, tuple[FacetRow, ...]]
    shape: Shape | None
    notes: tuple[Note, ...]
    samples: dict[str, tuple[SourceRef, ...]]  # category -> a few source rows, for traceability
    inputs: tuple[InputSummary, ...]
    server_log: ServerLogSummary | None = None
    timezone_note: str | None = None
    first_event: dt.datetime | None = None
    last_event: dt.datetime | None = None
    bucket_rule: str = ""  # why this bucket size ("--bucket 5m", or the automatic rule)
    alignment: str = ""  # where the first bucket starts and why
    family_samples: dict[str, tuple[SourceRef, ...]] = dataclasses.field(
        default_factory=dict
    )  # family -> rows
