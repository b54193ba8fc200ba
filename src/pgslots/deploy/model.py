"""The types of the deployment model: process groups, their connection demand, the slots.

Readers produce facts with `Evidence`; `topology.py` turns them into `ProcessGroup`s and
`budget.py` computes demand and usable slots. Every count is a `Quantity`: a value with its
proof, or an unknown that the user can supply with `--assume NAME=VALUE`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pgslots.evidence import Evidence

GroupKind = Literal["web", "worker", "beat", "other"]


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A count with its evidence. `value is None` means the repository cannot show it; then
    `unknown` names the `--assume` key that supplies it (e.g. "web.hosts")."""

    value: int | None
    evidence: tuple[Evidence, ...] = ()
    unknown: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclasses.dataclass(frozen=True)
class Demand:
    """Simultaneous server connections a group can hold: `steady` when idle or at a normal
    load, `worst` at its peak; `worst is None` means unbounded (ASGI without a concurrency
    limit, a leak). `formula` spells out the arithmetic, e.g. "16 hosts x 4 workers x 1"."""

    steady: int
    worst: int | None
    formula: str = ""

    @property
    def unbounded(self) -> bool:
        return self.worst is None


@dataclasses.dataclass(frozen=True)
class ConnectionPolicy:
    """How the group's processes hold connections (Django settings of the alias used)."""

    conn_max_age: int | None = 0  # seconds; None = unlimited persistent connections
    conn_max_age_evidence: tuple[Evidence, ...] = ()
    health_checks: bool = False
    pool_min: int | None = None  # Django >= 5.1 OPTIONS["pool"]; None = no pool
    pool_max: int | None = None
    via_pgbouncer: bool = False
    pgbouncer_pool_mode: str | None = None


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


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A count the repository cannot show, and what it does to the budget."""

    name: str  # the --assume key, e.g. "web.hosts"
    question: str  # "How many hosts run the web service?"
    floor_value: int  # the value used for the floor (usually 1)
    adds_per_unit: int | None  # connections each extra unit adds at worst; None if unbounded
    assumed: int | None = None  # set when the user supplied it


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

    def total_demand(self) -> tuple[int, int | None]:
        """(steady, worst) over all groups; worst is None when any group is unbounded."""
        steady = sum(g.demand.steady for g in self.groups)
        worsts = [g.demand.worst for g in self.groups]
        return steady, (None if any(w is None for w in worsts) else sum(w for w in worsts if w is not None))
