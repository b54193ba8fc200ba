"""The remedy catalogue: what to change, at what effort and risk, and what it is predicted
(by the budget model) or measured (by a lab run) to do.

A remedy is proposed only when it applies and is not already in place; its predicted effect
is always computed by re-running the budget model on the topology with the change applied,
never written by hand.
"""

from __future__ import annotations

import dataclasses

from pgslots.deploy.model import Demand
from pgslots.evidence import Evidence


@dataclasses.dataclass(frozen=True)
class MeasuredEffect:
    """What a lab scenario measured for this remedy, against the baseline of the same run."""

    scenario: str
    run_dir: str
    failed_requests: int
    baseline_failed_requests: int
    peak_backends: int
    baseline_peak_backends: int
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Remedy:
    code: str  # "R" + two digits, stable
    title: str
    effort: int  # 1 (one line) .. 5 (new infrastructure)
    risk: int  # 1 (safe) .. 5 (can break the app)
    summary: str
    change: str  # the exact change, in the repository's own terms (env var, file:line)
    caveats: tuple[str, ...] = ()
    predicted: Demand | None = None  # total demand after the change, from the budget model
    predicted_basis: str = ""  # the arithmetic behind `predicted`
    measured: MeasuredEffect | None = None
    evidence: tuple[Evidence, ...] = ()
