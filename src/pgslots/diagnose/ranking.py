"""Remedies ranked by effort and risk, with what the budget model predicts and the lab measured.

The catalogue (`pgslots.remedies`, filled by the audit) proposes what applies to the
topology, each with its predicted demand from the budget model. Here we drop what is already
in place (whatever the catalogue thought), attach the lab's measurements, rank, and read each
prediction against the usable slots. Nothing is predicted here: an effect without a model
run or a measurement stays unknown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from pgslots.deploy.model import ChangeTarget, Topology
from pgslots.diagnose.inplace import already_in_place
from pgslots.diagnosis import AlreadyInPlace, Capacity, RemedyAssessment
from pgslots.remedy import MeasuredEffect, Remedy


def _no_effect(remedy: Remedy, capacity: Capacity | None) -> bool:
    """The budget model predicts exactly today's demand: worth doing, not a direction for
    this incident (e.g. CONN_HEALTH_CHECKS)."""
    p = remedy.predicted
    if p is None or capacity is None or capacity.steady is None or remedy.measured is not None:
        return False
    if usable_after(remedy, capacity) != capacity.usable:
        return False
    today_worst = None if capacity.worst_unbounded else capacity.worst
    return p.steady == capacity.steady and p.worst == today_worst


def usable_after(remedy: Remedy, capacity: Capacity | None) -> int | None:
    """The usable slots once the remedy is applied: today's, moved by the change of
    max_connections a remedy makes (R07); None when today's are unknown."""
    if capacity is None or capacity.usable is None:
        return None
    raised = [
        c.value
        for c in remedy.changes
        if c.target is ChangeTarget.SERVER and c.field == "max_connections"
    ]
    if not raised or capacity.max_connections is None or not isinstance(raised[-1], int):
        return capacity.usable
    return capacity.usable + raised[-1] - capacity.max_connections


def _order(remedy: Remedy, capacity: Capacity | None) -> tuple[bool, int, int, float, str]:
    """By effort, then risk, then predicted worst demand (the audit's order), with the
    remedies that change nothing in the connection count last."""
    worst = (
        remedy.predicted.worst
        if remedy.predicted and remedy.predicted.worst is not None
        else float("inf")
    )
    return (_no_effect(remedy, capacity), remedy.effort, remedy.risk, worst, remedy.code)


def rank(
    remedies: Sequence[Remedy],
    in_place: tuple[AlreadyInPlace, ...],
    measured: Mapping[str, MeasuredEffect],
    capacity: Capacity | None = None,
    topology: Topology | None = None,
) -> tuple[list[Remedy], list[str]]:
    """(ranked remedies, sentences about the ones withheld)."""
    kept: list[Remedy] = []
    withheld: list[str] = []
    seen: set[str] = set()
    for remedy in remedies:
        if remedy.code in seen:
            continue
        seen.add(remedy.code)
        same = already_in_place(remedy, in_place, topology)
        if same is not None:
            withheld.append(f"{remedy.code} {remedy.title}: already in place ({same.setting})")
            continue
        if remedy.code in measured and remedy.measured is None:
            remedy = dataclasses.replace(remedy, measured=measured[remedy.code])
        kept.append(remedy)
    return sorted(kept, key=lambda r: _order(r, capacity)), withheld


def assess(remedies: Sequence[Remedy], capacity: Capacity | None) -> tuple[RemedyAssessment, ...]:
    out = []
    for i, remedy in enumerate(remedies, 1):
        usable = usable_after(remedy, capacity)
        fits: bool | None = None
        parts = []
        predicted = remedy.predicted
        if _no_effect(remedy, capacity):
            parts.append(
                "no change in the number of connections (worth doing, but not for this incident)"
            )
        elif predicted is None:
            parts.append("no prediction from the budget model")
        elif usable is None:
            parts.append("usable slots unknown: give --dsn to compare")
        elif predicted.worst is None:
            fits = False
            parts.append(
                f"worst case still unbounded (steady {predicted.steady} of {usable} usable slots)"
            )
        else:
            fits = predicted.worst <= usable
            room = usable - predicted.worst
            parts.append(
                f"worst case {predicted.worst} fits the {usable} usable slots ({room} to spare)"
                if fits
                else f"worst case {predicted.worst} still exceeds the {usable} usable slots by {-room}"
            )
        m = remedy.measured
        if (
            m is not None
            and m.baseline_failed_requests
            and m.failed_requests >= m.baseline_failed_requests
        ):
            parts.append("the lab measured no improvement")
        out.append(RemedyAssessment(code=remedy.code, rank=i, fits=fits, verdict="; ".join(parts)))
    return tuple(out)
