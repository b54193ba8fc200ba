"""From what the parts gathered to one `Diagnosis`: join, run the PGS4xx rules, interpret,
settle the checklist, rank the remedies.
"""

from __future__ import annotations

import datetime as dt

from pgslots.diagnose import attribution, capacity, checklist, inplace, interpret, ranking
from pgslots.diagnose.context import Gathered, Joined
from pgslots.diagnosis import Diagnosis
from pgslots.findings import Finding
from pgslots.rules import diagnose as rules


def join(gathered: Gathered) -> Joined:
    incident, topology, snapshot = gathered.incident, gathered.topology, gathered.snapshot
    server_paths = [p for s in gathered.sources if s.source == "server log" for p in s.paths]
    series = capacity.backend_series(
        incident, gathered.watch, gathered.watch_path, snapshot, server_paths
    )
    return Joined(
        gathered=gathered,
        attribution=attribution.attribute(incident, topology)
        if incident is not None and incident.total
        else (),
        series=series,
        capacity=capacity.capacity(snapshot, topology, series),
        budget=capacity.group_budgets(topology),
        in_place=inplace.detect(topology),
    )


def _dedupe(findings: list[Finding]) -> tuple[Finding, ...]:
    seen, out = set(), []
    for f in findings:
        key = (f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return tuple(sorted(out, key=lambda f: (-f.severity.rank, f.code)))


def build(gathered: Gathered) -> Diagnosis:
    joined = join(gathered)
    remedies, withheld = ranking.rank(
        gathered.remedies, joined.in_place, gathered.measured, joined.capacity, gathered.topology
    )
    return Diagnosis(
        inputs=tuple(gathered.inputs),
        incident=gathered.incident,
        topology=gathered.topology,
        snapshot=gathered.snapshot,
        findings=_dedupe(gathered.findings + rules.run(joined)),
        remedies=tuple(remedies),
        verification=checklist.checklist(joined),
        notes=tuple(gathered.notes),
        headline=interpret.headline(joined),
        interpretation=interpret.interpret(joined),
        attribution=joined.attribution,
        backends=joined.series,
        capacity=joined.capacity,
        budget=joined.budget,
        in_place=joined.in_place,
        assessments=ranking.assess(remedies, joined.capacity),
        withheld=tuple(withheld),
        lab=gathered.lab,
        assumptions=dict(gathered.assumptions),
        generated_at=gathered.now or dt.datetime.now(dt.timezone.utc),
        sources=gathered.sources,
    )
