"""The thin layer between `diagnose` and the other commands' use cases.

Everything `diagnose` needs from the events pipeline, the audit, the probe and the lab goes
through these few functions, so that when one of those parts changes its API only this
module follows. Each returns core types (`Incident`, `Topology`, `Snapshot`, `Remedy`,
`Finding`) and raises `InputError` for input it cannot use.
"""

from __future__ import annotations

import dataclasses
import re
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
    """The events pipeline over the files, or a saved `events --format json` output."""
    from pgslots.diagnose.gather import incident_json
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions
    from pgslots.events.times import parse_zone

    if len(paths) == 1:
        incident = incident_json(paths[0])
        if incident is not None:
            return EventsResult(incident, reserved_wordings(incident))
    zone = parse_zone(tz or "UTC")
    incident = investigate(list(paths), ReadOptions(tz=zone, progress=progress), TimelineOptions(tz=zone))
    return EventsResult(incident, reserved_wordings(incident))


def reserved_wordings(incident: Incident) -> dict[str, int]:
    """Events per server generation of the reserved-slot wording ("pre16", "16+"), from the
    pipeline's notes (it reads every message), else from a server log's inferred version."""
    found = {
        note.key.removeprefix("reserved_wording_").replace("plus", "+"): note.count
        for note in incident.notes
        if note.key.startswith("reserved_wording_")
    }
    if found:
        return found
    log = incident.server_log
    reserved = incident.by_category.get("reserved_superuser", 0)
    if log is not None and log.inferred_version and reserved:
        if re.search(r"<=?\s*15|^1[0-5]\b", log.inferred_version):
            return {"pre16": reserved}
        if re.search(r">=?\s*16|^(1[6-9]|[2-9]\d)\b", log.inferred_version):
            return {"16+": reserved}
    return {}


def audit(repo: Path, assume: dict[str, int]) -> AuditResult:
    raise InputError("auditing a repository needs the audit part, which this build does not have yet", path=str(repo))


def probe(dsn: str, pgbouncer_dsn: str | None, topology: Topology | None) -> Snapshot:
    raise InputError("probing a server needs the live part, which this build does not have yet")


def pgbouncer(dsn: str) -> PgbouncerState:
    raise InputError("probing pgbouncer needs the live part, which this build does not have yet")


def lab_run(path: Path) -> tuple[LabRun, dict[str, MeasuredEffect]]:
    raise InputError("reading a lab run needs the lab part, which this build does not have yet", path=str(path))
