"""The thin layer between `diagnose` and the other commands' use cases.

Everything `diagnose` needs from the events pipeline, the audit, the probe and the lab goes
through these few functions, so that when one of those parts changes its API only this
module follows. Each returns core types (`Incident`, `Topology`, `Snapshot`, `Remedy`,
`Finding`) and raises `InputError` for input it cannot use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from pgslots.deploy.model import Topology
from pgslots.diagnosis import LabRun
from pgslots.errors import InputError
from pgslots.events.model import Incident
from pgslots.findings import Finding
from pgslots.live.model import PgbouncerState, Snapshot
from pgslots.remedies import MeasuredEffect, Remedy


@dataclasses.dataclass
class EventsResult:
    incident: Incident
    reserved_wordings: dict[str, int] = dataclasses.field(default_factory=dict)
    findings: list[Finding] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class AuditResult:
    topology: Topology
    findings: list[Finding] = dataclasses.field(default_factory=list)
    remedies: list[Remedy] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def events(paths: Sequence[Path], tz: str | None, progress: Callable[[int], None] | None) -> EventsResult:
    from pgslots.diagnose.gather import incident_json

    if len(paths) == 1:
        incident = incident_json(paths[0])
        if incident is not None:
            return EventsResult(incident, _wordings_from_incident(incident))
    raise InputError("reading raw event files needs the events pipeline, which this build does not have yet")


def _wordings_from_incident(incident: Incident) -> dict[str, int]:
    """Without the messages, the wording's generation can only come from the incident's own
    inference (server logs)."""
    log = incident.server_log
    if log is None or not log.inferred_version:
        return {}
    reserved = incident.by_category.get("reserved_superuser", 0)
    if "15" in log.inferred_version and "<" in log.inferred_version:
        return {"pre16": reserved}
    return {}


def audit(repo: Path, assume: dict[str, int]) -> AuditResult:
    raise InputError("auditing a repository needs the audit part, which this build does not have yet", path=str(repo))


def probe(dsn: str, pgbouncer_dsn: str | None, topology: Topology | None) -> Snapshot:
    raise InputError("probing a server needs the live part, which this build does not have yet")


def pgbouncer(dsn: str) -> PgbouncerState:
    raise InputError("probing pgbouncer needs the live part, which this build does not have yet")


def lab_run(path: Path) -> tuple[LabRun, dict[str, MeasuredEffect]]:
    raise InputError("reading a lab run needs the lab part, which this build does not have yet", path=str(path))
