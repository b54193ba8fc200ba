"""The `Diagnosis`: every input joined into one report, which the renderers only display.

`pgslots.diagnose` builds it; `pgslots.report.diagnose_*` render it. Everything a renderer
shows is here, already computed and traceable: the renderers format, they never count,
compare or decide.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from pgslots.deploy.model import Topology, Unknown
from pgslots.events.model import BackendPoint, Incident
from pgslots.evidence import Evidence
from pgslots.findings import Finding
from pgslots.live.model import Snapshot
from pgslots.remedy import Mechanism, Remedy


@dataclasses.dataclass(frozen=True)
class VerificationItem:
    """One thing a team would want to check: settled (with the answer and its evidence), or
    still open (with the exact command or file that would settle it)."""

    question: str
    answer: str | None = None
    evidence: tuple[str, ...] = ()
    how_to_settle: str | None = None
    key: str = ""  # stable identifier for JSON consumers, e.g. "conn_max_age"

    @property
    def settled(self) -> bool:
        return self.answer is not None


def how_to_settle(unknown: Unknown) -> str:
    """What settles an unknown count: a query on the server, the pgslots Django app, or
    `--assume NAME=N` for what only the team knows (hosts, CPUs)."""
    if unknown.name == "server.max_connections":
        return "SHOW max_connections;"
    if unknown.name == "server.other_clients":
        return "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> current_user;"
    if unknown.name.startswith("settings.") and unknown.name != "settings.conn_max_age":
        return "python manage.py check --tag pgslots (the pgslots Django app reads the running settings)"
    return f"--assume {unknown.name}=N"


def unknown_item(unknown: Unknown) -> VerificationItem:
    """The verification item for one of the audit's unknown counts: the one builder the
    audit's list and the diagnosis's checklist share."""
    return VerificationItem(
        unknown.question, how_to_settle=how_to_settle(unknown), key=f"unknown:{unknown.name}"
    )


@dataclasses.dataclass(frozen=True)
class InputStatus:
    kind: str  # "events", "repo", "dsn", "pgbouncer", "watch-record", "lab-run"
    given: bool
    detail: str  # what was read, or why it could not be used
    ok: bool = True  # False: given, but unusable (unreadable, not Django, refused...)
    adds: str = ""  # what this kind of input brings to the report (shown when it is missing)


@dataclasses.dataclass(frozen=True)
class Statement:
    """One sentence of interpretation and what it rests on. `verified` is False for an
    inference the evidence supports but does not prove; the report says so."""

    key: str
    text: str
    basis: tuple[str, ...] = ()
    verified: bool = True


@dataclasses.dataclass(frozen=True)
class SourceAgreement:
    """One more source of the same incident, read against the headline's (the source closest
    to the application): its failures matched to the headline's by category, each within a
    few seconds of one. `text` says it in a sentence.

    For a server log, `events` are its slot refusals, `matched` those an application failure
    accounts for, `retries` the matched refusals that were a second attempt of one connect()
    (libpq's sslmode=prefer retry, several addresses), and `unmatched_by` the others by role:
    refusals of other clients, or failures the application did not record."""

    source: str  # "server log", "application log", "pgbouncer log", "APM"
    paths: tuple[str, ...]
    events: int
    matched: int
    reached: int = 0  # headline failures this source's matched events account for
    retries: int = 0
    unmatched_by: dict[str, int] = dataclasses.field(default_factory=dict)
    headline_unmatched: int = 0  # headline failures this source holds no record of
    tolerance_seconds: float = 0.0
    text: str = ""


@dataclasses.dataclass(frozen=True)
class TransactionCount:
    transaction: str
    count: int


@dataclasses.dataclass(frozen=True)
class GroupAttribution:
    """Failing transactions assigned to one process group of the deployment.

    `group` is the audited group's name when a repository was audited, else the kind
    ("web", "worker") the transaction names imply. `before_view` counts the events whose
    transaction was still named after a middleware: they failed before the view ran."""

    group: str
    kind: str  # "web", "worker", "beat", "other", "unattributed"
    count: int
    share: float  # of all events, 0..1
    before_view: int
    transactions: tuple[TransactionCount, ...]
    rule: str  # why these transactions map to this group
    audited: bool  # the group exists in the audited topology


@dataclasses.dataclass(frozen=True)
class BackendSeries:
    """Client backends over time from one source ("server log", "watch record", "probe",
    "lab baseline"...). A probe gives a single point."""

    source: str
    path: str
    points: tuple[BackendPoint, ...]
    peak: int | None = None
    peak_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Capacity:
    """Usable slots against the audited demand and the observed peak, each with its basis."""

    usable: int | None
    usable_basis: str
    max_connections: int | None = None
    usable_assumed: bool = False  # rests on PostgreSQL's default max_connections, not on the server
    steady: int | None = None
    worst: int | None = None
    worst_unbounded: bool = False
    demand_basis: str = ""
    worst_bound: str = (
        "number"  # "number", "unbounded" or "unknown" (a group the audit cannot model)
    )
    observed_peak: int | None = None
    observed_basis: str = ""


@dataclasses.dataclass(frozen=True)
class GroupBudget:
    """One process group's demand as the chart and the tables show it."""

    group: str
    kind: str
    server_model: str
    steady: int | None  # None: a group the audit cannot model
    worst: int | None  # None: see bound
    formula: str
    conn_max_age: str  # as configured: "0", "60", "None (unlimited)", "pool 2..4"
    bound: str = "number"  # "unbounded" or "unknown" when worst is None


@dataclasses.dataclass(frozen=True)
class AlreadyInPlace:
    """A usual remedy that is already deployed, so the report does not propose it; with
    what it does in this deployment (e.g. persistent connections leak under ASGI)."""

    title: str
    setting: str  # "CONN_MAX_AGE=60"
    evidence: tuple[Evidence, ...]
    consequence: str
    mechanism: Mechanism | None = None  # what it is; a remedy that provides the same is moot
    summary: str = ""  # the consequence in a few words, for one-line displays


@dataclasses.dataclass(frozen=True)
class RemedyAssessment:
    """A ranked remedy's predicted demand read against the usable slots (and the lab)."""

    code: str
    rank: int  # 1 = try first
    fits: bool | None  # predicted worst demand <= usable slots; None when either is unknown
    verdict: str


@dataclasses.dataclass(frozen=True)
class LabScenario:
    """One scenario of a lab run, as its summary reported it."""

    name: str
    failed_requests: int
    peak_backends: int | None
    requests: int | None = None
    remedy: str = ""  # remedy code the scenario measures; "" for the baseline
    note: str = ""

    @property
    def failed_share(self) -> float:
        """Failed requests over requests made (0..1); over 1 request when the count is unknown."""
        return self.failed_requests / (self.requests or 1)


@dataclasses.dataclass(frozen=True)
class LabRun:
    path: str
    baseline: str
    scenarios: tuple[LabScenario, ...]
    usable: int | None = None
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    inputs: tuple[InputStatus, ...]
    incident: Incident | None = None
    topology: Topology | None = None
    snapshot: Snapshot | None = None
    findings: tuple[Finding, ...] = ()
    remedies: tuple[Remedy, ...] = ()  # ranked: first is the one to try first
    verification: tuple[VerificationItem, ...] = ()
    notes: tuple[str, ...] = ()
    headline: str = ""
    interpretation: tuple[Statement, ...] = ()
    attribution: tuple[GroupAttribution, ...] = ()
    backends: tuple[BackendSeries, ...] = ()
    capacity: Capacity | None = None
    budget: tuple[GroupBudget, ...] = ()
    in_place: tuple[AlreadyInPlace, ...] = ()
    assessments: tuple[RemedyAssessment, ...] = ()
    withheld: tuple[str, ...] = ()  # catalogue remedies not proposed, and why
    lab: LabRun | None = None
    assumptions: dict[str, int] = dataclasses.field(default_factory=dict)
    generated_at: dt.datetime | None = None
    sources: tuple[
        SourceAgreement, ...
    ] = ()  # the other sources of the incident, matched to `incident`
