"""The `Snapshot`: what the live server (and pgbouncer) said at one moment.

Every number here was read from the server in one read-only transaction (`live/queries.py`)
or from the pgbouncer admin console (`live/pgbouncer.py`); the arithmetic that combines them
(usable slots, headroom, pool sums) is spelled out in the `*_formula` fields so a reader can
check it instead of trusting it.

Conventions: `None` means "not known" (hidden for lack of privilege, not reported by this
server version or pooler), never zero. Counts of client backends are client backends only
(`backend_type = 'client backend'`): walsenders, autovacuum and background workers have
their own slot pools (domain reference §1.1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

HIDDEN = "(hidden)"
"""How a value hidden for lack of privilege is shown (grouping keys, Prometheus labels)."""


def utc_millis(moment: dt.datetime | None = None) -> dt.datetime:
    """A UTC time at millisecond precision, what the JSON keeps, so that a snapshot read back
    from a record file equals the one written."""
    moment = (moment or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclasses.dataclass(frozen=True)
class RoleInfo:
    name: str
    is_superuser: bool | None  # None: could not tell
    can_use_reserved: (
        bool | None
    )  # has privileges of pg_use_reserved_connections (PG16+); None before 16
    connection_limit: int | None  # rolconnlimit; None = no limit (-1)
    connections: int | None = None  # client backends of this role right now


@dataclasses.dataclass(frozen=True)
class DatabaseLimit:
    name: str
    connection_limit: int | None  # datconnlimit; None = no limit
    connections: int | None = None  # client backends connected to it right now


@dataclasses.dataclass(frozen=True)
class BackendGroup:
    """Client backends sharing database, user, application, client address and state."""

    database: str | None
    user: str | None
    application: str | None
    client: str | None  # client address; "local" for a Unix socket; None when hidden
    state: str | None  # active, idle, idle in transaction, ...; None when hidden
    count: int
    max_idle_seconds: float | None = None
    max_idle_in_transaction_seconds: float | None = None
    expected: int | None = (
        None  # unused: topology expectations are per process group (`expectations`)
    )
    topology_group: str | None = None  # the --topology group these backends were matched to


@dataclasses.dataclass(frozen=True)
class GroupExpectation:
    """One process group of an audit's topology against the backends matched to it.

    Matching rule (`live/expectations.py`): a backend belongs to a group when its
    application_name is the group's name, or starts with it followed by one of ``-_.:/@ ``
    (case-insensitive, the longest name wins); failing that, the same test on its user
    name. Application-role backends that match no group are listed as "(unattributed)".
    """

    group: str
    kind: str
    matched: int
    expected_steady: int | None
    expected_worst: int | None  # None: unbounded (or no group, for "(unattributed)")
    formula: str = ""
    rule: str = ""

    @property
    def status(self) -> str:
        """ "over_worst", "over_steady", "within" or "unexpected" (no group expects them)."""
        if self.expected_steady is None:
            return "unexpected" if self.matched else "within"
        if self.expected_worst is not None and self.matched > self.expected_worst:
            return "over_worst"
        if self.matched > self.expected_steady:
            return "over_steady"
        return "within"


@dataclasses.dataclass(frozen=True)
class PgbouncerPool:
    database: str
    user: str
    cl_active: int | None  # None: the pooler does not report it (PgDog)
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int | None  # None: not reported (PgDog)
    maxwait_seconds: float  # maxwait + maxwait_us / 1e6: how long the oldest waiting client waited
    pool_mode: str | None = None
    pool_size: int | None = None  # effective pool size of this (database, user) pair
    cl_idle: int | None = None  # PgCat only
    sv_tested: int | None = None
    sv_login: int | None = None
    reserve_pool_size: int | None = None
    server_limit: int | None = (
        None  # pool_size + reserve_pool_size: server connections this pair may open
    )


@dataclasses.dataclass(frozen=True)
class PgbouncerDatabase:
    """One entry of `SHOW DATABASES`."""

    name: str
    host: str | None
    port: int | None
    database: str | None  # the server database it forwards to
    force_user: str | None
    pool_size: int | None
    reserve_pool_size: int | None
    max_connections: int | None  # max_db_connections; None = unlimited (0)
    current_connections: int | None
    pool_mode: str | None = None
    paused: bool | None = None
    disabled: bool | None = None


@dataclasses.dataclass(frozen=True)
class PgbouncerClientGroup:
    """`SHOW CLIENTS` rows grouped by database, user, application and state."""

    database: str
    user: str
    application: str | None
    state: str
    count: int
    max_wait_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class PgbouncerDbStats:
    """The parts of `SHOW STATS` that speak about waiting (microseconds, as pgbouncer gives them)."""

    database: str
    total_xact_count: int | None = None
    total_wait_time_us: int | None = None
    avg_wait_time_us: int | None = None
    avg_xact_time_us: int | None = None


@dataclasses.dataclass(frozen=True)
class PgbouncerState:
    version: str | None
    pools: tuple[PgbouncerPool, ...]
    config: dict[str, str] = dataclasses.field(default_factory=dict)
    server_side_capacity: int | None = None  # sum of pool sizes over (db, user) pairs
    notes: tuple[str, ...] = ()
    kind: str = "pgbouncer"  # "pgbouncer", "pgcat" or "pgdog"
    target: str = ""  # the admin DSN, password redacted
    databases: tuple[PgbouncerDatabase, ...] = ()
    clients: tuple[PgbouncerClientGroup, ...] = ()
    servers_by_state: dict[str, int] = dataclasses.field(default_factory=dict)
    stats: tuple[PgbouncerDbStats, ...] = ()
    server_side_capacity_formula: str = ""

    @property
    def clients_waiting(self) -> int:
        return sum(p.cl_waiting for p in self.pools)

    @property
    def maxwait_seconds(self) -> float:
        return max((p.maxwait_seconds for p in self.pools), default=0.0)

    @property
    def server_connections(self) -> int:
        """Server connections pgbouncer holds now (every state)."""
        return sum(
            p.sv_active + p.sv_idle + (p.sv_used or 0) + (p.sv_tested or 0) + (p.sv_login or 0)
            for p in self.pools
        )


@dataclasses.dataclass(frozen=True)
class Refusal:
    """The server refused our probe: that is evidence, not an error."""

    category: str  # events Category value, e.g. "reserved_superuser"
    message: str
    who_could_connect: str
    categories: tuple[str, ...] = ()  # every category the message carries (several attempts)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    taken_at: dt.datetime
    target: str  # DSN with the password redacted
    server_version: str | None = None
    server_version_num: int | None = None
    max_connections: int | None = None
    superuser_reserved_connections: int | None = None
    reserved_connections: int | None = None  # None before PG16
    role: RoleInfo | None = None  # the application role: usable slots are computed for it
    usable_for_role: int | None = (
        None  # slots the role may ever fill (the ceiling, before others take theirs)
    )
    client_backends: int | None = None  # all client backends, including ours
    backends: tuple[BackendGroup, ...] = ()
    database_limits: tuple[DatabaseLimit, ...] = ()
    hidden: tuple[str, ...] = ()  # details hidden for lack of privilege
    refused: Refusal | None = None
    pgbouncer: PgbouncerState | None = None
    notes: tuple[str, ...] = ()
    # -- added by the live issue ------------------------------------------------------------
    probe_user: str | None = None  # the role the probe logged in as
    database: str | None = None  # the database the probe connected to
    own_pid: int | None = None  # the probe's own backend (counted in client_backends)
    usable_formula: str = ""  # e.g. "20 max_connections - 3 superuser_reserved - 2 reserved = 15"
    headroom_for_role: int | None = None  # slots the role can still open now (>= 0)
    headroom_limited_by: str | None = None  # "server", "role limit" or "database limit"
    headroom_formula: str = ""
    roles: tuple[RoleInfo, ...] = ()  # roles holding client backends or having a CONNECTION LIMIT
    other_backends: dict[str, int] = dataclasses.field(
        default_factory=dict
    )  # backend_type -> n, not client backends
    expectations: tuple[GroupExpectation, ...] = ()  # with --topology
    query_ms: float | None = None  # time the snapshot's queries took
    unreachable: str | None = None  # watch: the connection was lost and not yet re-established

    def headroom_below(self, fraction: float) -> bool:
        """The role's headroom is under `fraction` of its usable slots (the --warn line)."""
        return (
            self.headroom_for_role is not None
            and bool(self.usable_for_role)
            and self.headroom_for_role < (self.usable_for_role or 0) * fraction
        )

    @property
    def ok(self) -> bool:
        """A snapshot of the server itself (not a refusal, not a gap)."""
        return (
            self.refused is None and self.unreachable is None and self.max_connections is not None
        )
