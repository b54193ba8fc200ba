"""What `diagnose` gathered from its inputs, and what joining them produced.

`Gathered` is filled by `gather` (which calls the events pipeline, the audit and the probe,
each optional); `Joined` adds the cross-input results that the rules, the interpretation,
the checklist and the ranking all read. Neither is rendered: the `Diagnosis` is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from pgslots.deploy.model import Topology
from pgslots.diagnosis import (
    AlreadyInPlace,
    BackendSeries,
    Capacity,
    GroupAttribution,
    GroupBudget,
    InputStatus,
    LabRun,
    SourceAgreement,
)
from pgslots.events.model import SLOT_EXHAUSTION, Incident
from pgslots.findings import Finding
from pgslots.live.model import Snapshot
from pgslots.remedy import MeasuredEffect, Remedy


@dataclasses.dataclass
class Gathered:
    """The parts' own results. Any of them may be missing; `inputs` says why."""

    inputs: list[InputStatus] = dataclasses.field(default_factory=list)
    incident: Incident | None = None
    sources: tuple[SourceAgreement, ...] = ()  # the incident's other sources, matched to it
    reserved_wordings: dict[str, int] = dataclasses.field(
        default_factory=dict
    )  # "pre16"/"16+" -> events
    topology: Topology | None = None
    snapshot: Snapshot | None = None
    watch: list[Snapshot] = dataclasses.field(default_factory=list)
    watch_path: str = ""
    lab: LabRun | None = None
    measured: dict[str, MeasuredEffect] = dataclasses.field(
        default_factory=dict
    )  # remedy code -> effect
    findings: list[Finding] = dataclasses.field(default_factory=list)  # from the parts' own rules
    remedies: list[Remedy] = dataclasses.field(
        default_factory=list
    )  # the audit's catalogue, applicable
    assumptions: dict[str, int] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    now: dt.datetime | None = None

    def unusable(self) -> list[InputStatus]:
        return [s for s in self.inputs if s.given and not s.ok]


@dataclasses.dataclass(frozen=True)
class Joined:
    gathered: Gathered
    attribution: tuple[GroupAttribution, ...]
    series: tuple[BackendSeries, ...]
    capacity: Capacity | None
    budget: tuple[GroupBudget, ...]
    in_place: tuple[AlreadyInPlace, ...]

    @property
    def incident(self) -> Incident | None:
        return self.gathered.incident

    @property
    def topology(self) -> Topology | None:
        return self.gathered.topology

    @property
    def snapshot(self) -> Snapshot | None:
        return self.gathered.snapshot

    @property
    def failures(self) -> int:
        """Slot-exhaustion failures observed (0 without events)."""
        incident = self.incident
        if incident is None:
            return 0
        slot_values = {c.value for c in SLOT_EXHAUSTION}
        return sum(
            n for key, n in incident.by_combination.items() if set(key.split("+")) & slot_values
        )
