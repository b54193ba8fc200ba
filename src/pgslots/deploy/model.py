"""The types of the deployment model: process groups, their connection demand, the slots.

Readers produce facts with `Evidence`; `assembly.py` turns them into `ProcessGroup`s and
`budget.py` computes demand and usable slots. Every count is a `Quantity`: a value with its
proof, or an unknown that the user can supply with `--assume NAME=VALUE`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

from pgslots.evidence import Evidence
from pgslots.vocabulary import Term


class GroupKind(Term):
    """What a process group serves: web requests, Celery tasks, the beat scheduler, or else."""

    WEB = "web"
    WORKER = "worker"
    BEAT = "beat"
    OTHER = "other"


class ConcurrencyModel(Term):
    """How a group's processes hold connections, for the budget model (domain reference §7.1)."""

    SYNC = "sync"  # one request at a time per process (gunicorn sync, uwsgi)
    THREADS = "threads"  # gunicorn gthread: one connection per thread
    GREENLETS = "greenlets"  # gevent/eventlet workers
    ASGI = "asgi"  # a thread (and a connection) per in-flight request
    PREFORK = "prefork"  # Celery prefork children
    CELERY_THREADS = "celery-threads"
    CELERY_GREEN = "celery-green"
    SOLO = "solo"
    BEAT_DB = "beat-db"  # beat with the database scheduler
    COMMAND = "command"  # a long-running management command
    JOB = "job"  # a one-shot command such as migrate
    # an RQ worker: each job in a forked work horse that exits after it
    FORK_PER_JOB = "fork-per-job"
    # another program's own pool (FreeRADIUS rlm_sql): min held, max at most
    CLIENT_POOL = "client-pool"
    NONE = "none"  # holds no database connection
    UNMODELLED = (
        "unmodelled"  # a program of the project's image pgslots cannot read: counts unknown
    )


SERVER_FIELDS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "other_clients",
    "version",
)
"""The database server's counts (`--assume server.max_connections=N`). A process group named
`server` (a common compose service name) keeps its own counts (`server.hosts`): the two sets
of field names never overlap."""


class ChangeTarget(enum.Enum):
    """What a remedy edits when it is not a process group: the database server's slots or
    pgbouncer's pools. A plain enum, never equal to a string: compose services called
    `server` or `pgbouncer` are common, and their edits must not land on the server (a group
    is targeted by its name, a `str`). The values are what JSON holds: no group can be named so.
    """

    SERVER = "<database server>"
    PGBOUNCER = "<pgbouncer>"

    @property
    def scope(self) -> str:
        """How `--assume` and the reports name it: `server.max_connections`."""
        return {ChangeTarget.SERVER: "server", ChangeTarget.PGBOUNCER: "pgbouncer"}[self]


def is_server_count(name: str) -> bool:
    """Whether an `--assume` name is the database server's (not a group called `server`)."""
    scope, _, field = name.partition(".")
    return scope == ChangeTarget.SERVER.scope and field in SERVER_FIELDS


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A count with its evidence. `value is None` means the repository cannot show it; then
    `unknown` names the `--assume` key that supplies it (e.g. "web.hosts")."""

    value: int | None
    evidence: tuple[Evidence, ...] = ()
    unknown: str | None = None
    floor: int = 1  # what the budget takes while unknown: 0 for a unit that may not run at all
    formula: str | None = (
        None  # with value None: an expression of the host's CPU count, `min(cpus, 12)` (readers/cpus.py)
    )

    @property
    def known(self) -> bool:
        return self.value is not None


Bound = Literal["number", "unbounded", "unknown"]
"""What bounds a worst case: a `number`; nothing (`unbounded`: ASGI without a limit, a leak);
or what pgslots cannot see (`unknown`: a group it cannot model, until `--assume` sets it)."""


@dataclasses.dataclass(frozen=True)
class Demand:
    """Simultaneous server connections a group can hold: `steady` when idle or at a normal
    load, `worst` at its peak. `worst` is a number only when `bound` is "number"; `steady` is
    None for a group pgslots cannot model (a total's steady is the sum of the known ones).
    `formula` spells out the arithmetic, e.g. "16 hosts x 4 workers x 1"."""

    steady: int | None
    worst: int | None
    formula: str = ""
    bound: Bound = "number"

    def __post_init__(self) -> None:
        # `Demand(steady, None)` (and documents written before `bound` existed) mean unbounded;
        # a number is always bound "number".
        if self.worst is None and self.bound == "number":
            object.__setattr__(self, "bound", "unbounded")
        elif self.worst is not None and self.bound != "number":
            object.__setattr__(self, "bound", "number")

    @property
    def unbounded(self) -> bool:
        return self.bound == "unbounded"

    @property
    def unknown(self) -> bool:
        return self.bound == "unknown"


def combine_bounds(bounds: list[Bound]) -> Bound:
    """A sum is unbounded if any part is, else unknown if any part is, else a number."""
    if "unbounded" in bounds:
        return "unbounded"
    return "unknown" if "unknown" in bounds else "number"


@dataclasses.dataclass(frozen=True)
class ConnectionPolicy:
    """How the group's processes hold connections (Django settings of the alias used)."""

    conn_max_age: int | None = 0  # seconds; None = unlimited persistent connections
    conn_max_age_evidence: tuple[Evidence, ...] = ()
    health_checks: bool = False
    pool_min: int | None = None  # Django >= 5.1 OPTIONS["pool"]; None = no pool
    pool_max: int | None = None
    # False: `max_size` is written but not readable (a variable set nowhere): the pool then
    # bounds nothing the audit can see, and a process takes its own concurrency at worst.
    pool_max_known: bool = True
    via_pgbouncer: bool = False
    pgbouncer_pool_mode: str | None = None
    pool_evidence: tuple[Evidence, ...] = ()
    health_checks_evidence: tuple[Evidence, ...] = ()
    disable_server_side_cursors: bool = False
    atomic_requests: bool = False
    conn_max_age_known: bool = (
        True  # False: the settings read it from a variable set nowhere we can see
    )
    conn_max_age_env: str | None = None  # the variable CONN_MAX_AGE is read from, if any


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    name: str  # "web", "celery-worker", "beat", ...
    kind: GroupKind
    server_model: str  # "gunicorn sync", "gunicorn gthread", "asgi (gunicorn+uvicorn worker)", "celery prefork", ...
    hosts: Quantity
    processes: Quantity  # per host
    per_process: Quantity  # concurrency per process (threads, greenlets, in-flight); value None + unknown=None = unbounded
    aliases: tuple[str, ...]  # DB aliases this group uses on the audited server
    policy: ConnectionPolicy
    demand: Demand
    evidence: tuple[Evidence, ...] = ()
    command: str = ""  # the start command as read, secrets redacted
    concurrency_model: ConcurrencyModel = (
        ConcurrencyModel.SYNC
    )  # how its processes hold connections
    replicas: Quantity = dataclasses.field(
        default_factory=lambda: Quantity(1)
    )  # containers per host
    max_replicas: Quantity | None = None  # Kubernetes HPA maxReplicas: the worst case uses it
    source: str = ""  # where the group was defined: "docker-compose.production.yml:12", ...
    notes: tuple[str, ...] = ()
    unit: str = ""  # the deployment unit that runs it (see `Unit`)
    unknown_reason: str = ""  # why pgslots cannot model it (concurrency_model "unmodelled")

    def __post_init__(self) -> None:
        # readers write the terms as text ("web", "asgi"): hold them as the enums they name
        object.__setattr__(self, "kind", GroupKind(self.kind))
        object.__setattr__(self, "concurrency_model", ConcurrencyModel(self.concurrency_model))

    @property
    def reuses_unchecked_connections(self) -> bool:
        """It keeps connections between requests or tasks (CONN_MAX_AGE known and not 0, no
        pool) without CONN_HEALTH_CHECKS: one home for PGS012 and the remedy R09. ASGI is left
        out, its persistent connections leak instead (PGS003)."""
        return (
            self.concurrency_model not in ("asgi", "none")
            and self.policy.conn_max_age != 0
            and self.policy.conn_max_age_known
            and not self.policy.health_checks
            and self.policy.pool_max is None
        )


@dataclasses.dataclass(frozen=True)
class SlotBudget:
    """Usable slots for the application role: max_connections - superuser_reserved -
    reserved (PG16+) - other clients (domain reference §1.2)."""

    max_connections: Quantity
    superuser_reserved_connections: Quantity
    reserved_connections: Quantity
    role_is_superuser: bool | None = None
    other_clients: Quantity = dataclasses.field(default_factory=lambda: Quantity(0))
    usable: int | None = None
    formula: str = ""
    server_version: Quantity = dataclasses.field(
        default_factory=lambda: Quantity(None)
    )  # major version
    role: str | None = None  # the role the application connects as, when the repo shows it
    role_evidence: tuple[Evidence, ...] = ()
    usable_if_default: int | None = None  # what `usable` would be with max_connections=100


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A count the repository cannot show, and what it does to the budget."""

    name: str  # the --assume key, e.g. "web.hosts"
    question: str  # "How many hosts run the web service?"
    floor_value: int  # the value used for the floor (usually 1)
    adds_per_unit: int | None  # connections each extra unit adds at worst; None: see `adds_bound`
    assumed: int | None = None  # set when the user supplied it
    adds_bound: Bound = "number"  # "unbounded" or "unknown" when adds_per_unit is None


@dataclasses.dataclass(frozen=True)
class VersionFact:
    package: str  # "django", "psycopg", ...
    version: str  # as pinned or constrained, e.g. "4.2.11" or ">=4.2,<5"
    evidence: Evidence


@dataclasses.dataclass(frozen=True)
class PgbouncerSetup:
    pool_mode: str | None
    default_pool_size: int | None
    max_client_conn: int | None
    max_db_connections: int | None
    reserve_pool_size: int | None
    pairs: tuple[str, ...] = ()  # "db/user" pairs it serves, when known
    server_side_demand: int | None = None
    evidence: tuple[Evidence, ...] = ()
    service: str = ""  # the compose service / deployment running it
    min_pool_size: int | None = None
    capacity: int | None = None  # server connections it can open: pairs x (pool + reserve), capped
    # One pgbouncer beside the application on every host (Heroku's pgbouncer buildpack): its pools
    # count once per host of each pooled group; capacity is then per host, None while unknown.
    per_host: bool = False


@dataclasses.dataclass(frozen=True)
class AliasFact:
    """One entry of DATABASES, as far as the settings show it."""

    name: str
    engine: str | None
    host: str | None  # value or "$VAR" when it comes from an unset variable
    port: str | None
    database: str | None
    user: str | None
    same_server: bool | None  # as `default`; None = cannot tell
    evidence: tuple[Evidence, ...] = ()


@dataclasses.dataclass(frozen=True)
class SettingGap:
    """A setting the audit cannot read from the repository (class-based settings, a module
    that is not committed, a branch it cannot decide): an unknown, with where it would come from."""

    setting: str  # "DATABASES", "CONN_MAX_AGE", "ENGINE"
    source: str  # where it would come from, in words
    evidence: tuple[Evidence, ...] = ()

    @property
    def name(self) -> str:
        """The unknown's name in the report (`settings.conn_max_age`)."""
        return f"settings.{self.setting.lower()}"


@dataclasses.dataclass(frozen=True)
class DjangoFacts:
    """What the production settings say that matters for connections."""

    settings_module: str | None
    settings_files: tuple[str, ...] = ()  # the star-import chain, most derived first
    aliases: tuple[AliasFact, ...] = ()
    csrf_use_sessions: bool = False
    session_engine: str | None = None
    login_required_middleware: bool = False
    celery_concurrency: Quantity | None = None
    celery_pool: str | None = None
    celery_beat_scheduler: str | None = None
    celery_result_backend: str | None = None
    evidence: tuple[Evidence, ...] = ()
    choice: str = ""  # why this settings module was chosen
    gaps: tuple[SettingGap, ...] = ()  # settings that could not be read: unknowns, never defaults


@dataclasses.dataclass(frozen=True)
class Unit:
    """One deployment unit: a compose file (with its overlays), a set of Kubernetes manifests,
    a Procfile, a set of supervisord programs or systemd units... Each runs on hosts of its
    own. The audit lists every candidate it found, kept or dropped, with why."""

    name: str  # "docker-compose.worker" (a compose file's stem), "Procfile", "kubernetes", ...
    kind: str  # compose, kubernetes, helm, kustomize, procfile, supervisord, systemd, s6, ansible, dockerfile
    paths: tuple[str, ...]
    kept: bool
    why: str
    hosts: str | None = None  # the --assume key of its own hosts ("docker-compose.worker.hosts")
    hosts_floor: int = 1  # 0: it may not run at all; 1: at least one host runs it
    groups: tuple[str, ...] = ()  # the process groups it contributes


@dataclasses.dataclass(frozen=True)
class Topology:
    """Everything the audit learnt about a deployment."""

    root: str
    groups: tuple[ProcessGroup, ...]
    slots: SlotBudget
    settings_module: str | None = None
    pgbouncer: PgbouncerSetup | None = None
    versions: tuple[VersionFact, ...] = ()
    unknowns: tuple[Unknown, ...] = ()
    assumptions: dict[str, int] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    read_errors: tuple[Evidence, ...] = ()  # files that could not be read, and why
    demand: Demand | None = None  # on the server itself, after pgbouncer (budget.server_demand)
    django: DjangoFacts | None = None
    sources: tuple[str, ...] = ()  # the files that defined the deployment, and why they were chosen
    unused_configs: tuple[Evidence, ...] = ()  # e.g. a postgresql.conf that nothing mounts
    units: tuple[Unit, ...] = ()  # every deployment unit found, kept or dropped, with why

    def total_demand(self) -> tuple[int, int | None]:
        """(steady, worst) over all groups: steady sums the known groups; worst is None when
        any group is unbounded or unknown (`combine_bounds` says which)."""
        steady = sum(g.demand.steady or 0 for g in self.groups)
        if combine_bounds([g.demand.bound for g in self.groups]) != "number":
            return steady, None
        return steady, sum(g.demand.worst or 0 for g in self.groups)

    def headroom(self) -> tuple[int, int | None] | None:
        """(steady, worst) slots left on the server after the demand (negative: over), against
        the usable slots (those of the default max_connections when the repository does not
        say); worst is None when the demand is unbounded or unknown; None without a demand."""
        usable = (
            self.slots.usable if self.slots.usable is not None else self.slots.usable_if_default
        )
        if self.demand is None or usable is None:
            return None
        steady = usable - (self.demand.steady or 0)
        return steady, (None if self.demand.worst is None else usable - self.demand.worst)
