"""The `Diagnosis`: every input joined into one report, which the renderers only display."""

from __future__ import annotations

import dataclasses

from pgslots.deploy.model import Topology
from pgslots.events.model import Incident
from pgslots.findings import Finding
from pgslots.live.model import Snapshot
from pgslots.remedies import Remedy


@dataclasses.dataclass(frozen=True)
class VerificationItem:
    """One thing a team would want to check: settled (with the answer and its evidence), or
    still open (with the exact command or file that would settle it)."""

    question: str
    answer: str | None = None
    evidence: tuple[str, ...] = ()
    how_to_settle: str | None = None


@dataclasses.dataclass(frozen=True)
class InputStatus:
    kind: str  # "events", "repo", "dsn", "pgbouncer", "watch-record", "lab-run"
    given: bool
    detail: str  # what was read, or what this input would have added


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    inputs: tuple[InputStatus, ...]
    incident: Incident | None = None
    topology: Topology | None = None
    snapshot: Snapshot | None = None
    findings: tuple[Finding, ...] = ()
    remedies: tuple[Remedy, ...] = ()
    verification: tuple[VerificationItem, ...] = ()
    notes: tuple[str, ...] = ()
