"""The `Snapshot`: what the live server (and pgbouncer) said at one moment."""

from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class RoleInfo:
    name: str
    is_superuser: bool | None  # None: could not tell
    can_use_reserved: bool | None  # member of pg_use_reserved_connections (PG16+)
    connection_limit: int | None  # rolconnlimit; None = no limit (-1)


@dataclasses.dataclass(frozen=True)
class DatabaseLimit:
    name: str
    connection_limit: int | None  # datconnlimit; None = no limit


@dataclasses.dataclass(frozen=True)
class BackendGroup:
    """Client backends sharing database, user, application, client address and state."""

    database: str | None
    user: str | None
    application: str | None
    client: str | None
    state: str | None  # active, idle, idle in transaction, ...; None when hidden
    count: int
    max_idle_seconds: float | None = None
    max_idle_in_transaction_seconds: float | None = None
    expected: int | None = None  # what --topology predicts for this group, when given


@dataclasses.dataclass(frozen=True)
class PgbouncerPool:
    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    maxwait_seconds: float
    pool_mode: str | None = None
    pool_size: int | None = None


@dataclasses.dataclass(frozen=True)
class PgbouncerState:
    version: str | None
    pools: tuple[PgbouncerPool, ...]
    config: dict[str, str] = dataclasses.field(default_factory=dict)
    server_side_capacity: int | None = None  # sum of pool sizes over (db, user) pairs
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Refusal:
    """The server refused our probe: that is evidence, not an error."""

    category: str  # events Category value, e.g. "reserved_superuser"
    message: str
    who_could_connect: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
    taken_at: dt.datetime
    target: str  # DSN with the password redacted
    server_version: str | None = None
    server_version_num: int | None = None
    max_connections: int | None = None
    superuser_reserved_connections: int | None = None
    reserved_connections: int | None = None  # None before PG16
    role: RoleInfo | None = None
    usable_for_role: int | None = None
    client_backends: int | None = None  # all client backends, including ours
    backends: tuple[BackendGroup, ...] = ()
    database_limits: tuple[DatabaseLimit, ...] = ()
    hidden: tuple[str, ...] = ()  # details hidden for lack of privilege
    refused: Refusal | None = None
    pgbouncer: PgbouncerState | None = None
    notes: tuple[str, ...] = ()
