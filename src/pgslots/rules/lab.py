"""Findings from a lab run (codes PGS300-399): what the measured scenarios say.

`pgslots lab --fail-on warning` can then gate a change in CI: a remedy that did not reduce the
failures, or a baseline that no longer reproduces the incident, is a finding with the run's
own numbers and its result file as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from pgslots.evidence import Evidence, Resolution
from pgslots.findings import Finding, Severity, define

if TYPE_CHECKING:  # the lab's result types; rules never import the lab at run time
    from pgslots.lab.results import ScenarioResult, Skipped

AREA = "lab"
BASELINE = "baseline"

NOT_REPRODUCED = define(
    "PGS301",
    "The baseline did not reproduce the incident",
    Severity.WARNING,
    "No slot-exhaustion error under the baseline load: the remedies' numbers compare nothing. "
    "Run longer or larger (--duration, --scale), or on a less loaded machine.",
    area=AREA,
)
NO_IMPROVEMENT = define(
    "PGS302",
    "A remedy did not reduce the failures",
    Severity.WARNING,
    "Do not ship it alone: read the scenario's notes (it may need another change with it) and "
    "compare its peak backends with the baseline's.",
    area=AREA,
)
PARTLY = define(
    "PGS303",
    "A remedy reduced the failures but some remain",
    Severity.INFO,
    "Look at what still failed (a 503 from a concurrency limit is the limit working; a 500 is the "
    "database refusing) and combine it with another remedy.",
    area=AREA,
)
SKIPPED = define(
    "PGS304",
    "A scenario was skipped",
    Severity.INFO,
    "Install what it needs (the reason says what: pgbouncer from your distribution, a PostgreSQL "
    "with --postgres-bin) and run it again.",
    area=AREA,
)

Result = Union["ScenarioResult", "Skipped"]
SLOT_WORDS = ("reserved", "too_many_clients", "limit")


def _slot_errors(result: ScenarioResult) -> int:
    return sum(
        n
        for family, n in result.errors_by_combination.items()
        if any(w in family for w in SLOT_WORDS)
    )


def _evidence(result: ScenarioResult) -> tuple[Evidence, ...]:
    return (Evidence(f"{result.artifacts}/result.json", None, result.change, Resolution.LITERAL),)


def _measured(results: Sequence[Result]) -> list[ScenarioResult]:
    return [r for r in results if hasattr(r, "web_failed")]  # type: ignore[misc]


def not_reproduced(results: Sequence[Result]) -> list[Finding]:
    base = next((r for r in _measured(results) if r.scenario == BASELINE), None)
    if base is None or _slot_errors(base) > 0:
        return []
    message = (
        f"baseline: {base.web_failed}/{base.web_attempted} requests failed, no slot-exhaustion "
        f"error, peak {base.peak_backends} backends of {base.usable_slots} usable slots."
    )
    return [NOT_REPRODUCED.finding(message, evidence=_evidence(base))]


def remedy_effects(results: Sequence[Result]) -> list[Finding]:
    measured = _measured(results)
    base = next((r for r in measured if r.scenario == BASELINE), None)
    if base is None or _slot_errors(base) == 0:
        return []
    findings = []
    for r in measured:
        if r.scenario == BASELINE:
            continue
        numbers = (
            f"{r.scenario}: {r.web_failed}/{r.web_attempted} requests failed "
            f"(baseline {base.web_failed}/{base.web_attempted}), {_slot_errors(r)} slot errors, "
            f"peak {r.peak_backends} backends."
        )
        if r.web_failed >= base.web_failed:
            findings.append(NO_IMPROVEMENT.finding(numbers, evidence=_evidence(r)))
        elif r.web_failed > 0 or r.tasks_failed > 0:
            findings.append(PARTLY.finding(numbers, evidence=_evidence(r)))
    return findings


def skipped(results: Sequence[Result]) -> list[Finding]:
    return [SKIPPED.finding(f"{r.scenario}: {r.reason}") for r in results if hasattr(r, "reason")]


def check_lab(results: Sequence[Result]) -> list[Finding]:
    """Every lab finding, in code order."""
    found = not_reproduced(results) + remedy_effects(results) + skipped(results)
    return sorted(found, key=lambda f: f.code)
