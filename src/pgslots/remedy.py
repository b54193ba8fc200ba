"""What a remedy is, and the registry of remedy kinds (`define_remedy`, as `define` is for
findings): the catalogue in `pgslots.remedies` fills it; rules, lab scenarios and the
already-in-place check refer to its entries as objects.

A remedy's change is data (`Change`: which group, or the server, or pgbouncer; which
field; which value), so anyone holding a `Topology` and a `Remedy` can recompute its
prediction (`predict`: the budget model re-run with the change applied) or tell whether it
already holds (`changes_hold`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pgslots.deploy import budget
from pgslots.deploy.model import ChangeTarget, Demand, PgbouncerSetup, Quantity, Topology
from pgslots.evidence import Evidence, Resolution
from pgslots.vocabulary import Term


class Mechanism(Term):
    """What a remedy puts in place, as the audit can also find it already deployed: a remedy
    that provides a mechanism the deployment already has is not proposed again."""

    PERSISTENT_CONNECTIONS = "persistent-connections"  # CONN_MAX_AGE > 0 or None
    DJANGO_POOL = "django-pool"  # OPTIONS["pool"] (Django >= 5.1)
    PGBOUNCER = "pgbouncer"  # pgbouncer in session mode, or a mode the repository does not show
    PGBOUNCER_TRANSACTION = "pgbouncer-transaction"


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
class Change:
    """One edit of the model: `target` is a group's name, or the server / pgbouncer
    (`ChangeTarget`); `field` a dotted field of it ("policy.conn_max_age", "per_process",
    "max_connections")."""

    target: ChangeTarget | str
    field: str
    value: int | str | bool | None

    @property
    def target_name(self) -> str:
        """The target as the reports and `--assume` name it: a group's name, `server`, `pgbouncer`."""
        return self.target.scope if isinstance(self.target, ChangeTarget) else self.target


@dataclasses.dataclass(frozen=True)
class Remedy:
    """One remedy proposed for one deployment: its kind's code and title, the exact change
    in the repository's own terms, and what it is predicted (or measured) to do."""

    code: str  # "R" + two digits, stable: the `RemedySpec` it comes from
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
    changes: tuple[Change, ...] = ()  # the model edits `predicted` comes from
    fits: bool | None = None  # predicted worst within the usable slots (None: usable unknown)
    provides: Mechanism | None = None  # what it puts in place (its kind's)


@dataclasses.dataclass(frozen=True)
class Proposal:
    """What a remedy kind proposes for one topology (its `propose` function's answer)."""

    changes: tuple[Change, ...]
    change: str
    caveats: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    effort: int | None = None  # overrides the spec's (e.g. when a Django upgrade is needed)
    risk: int | None = None


@dataclasses.dataclass(frozen=True)
class RemedySpec:
    """A kind of remedy: its stable code, title, effort and risk, and the function that
    proposes it for a topology (None when it does not apply)."""

    code: str
    title: str
    effort: int
    risk: int
    summary: str
    propose: Callable[[Topology], Proposal | None] = dataclasses.field(repr=False, compare=False)
    provides: Mechanism | None = None


REMEDIES: dict[str, RemedySpec] = {}
"""Every remedy kind by code, in the catalogue's order (`pgslots.remedies` defines them)."""


def define_remedy(
    code: str,
    title: str,
    *,
    effort: int,
    risk: int,
    summary: str,
    propose: Callable[[Topology], Proposal | None],
    provides: Mechanism | None = None,
) -> RemedySpec:
    """Declare a remedy kind. Import-time only; a duplicate code is a programming error."""
    if code in REMEDIES:
        raise ValueError(f"remedy code {code} defined twice")
    if not (len(code) == 3 and code.startswith("R") and code[1:].isdigit()):
        raise ValueError(f"remedy code {code!r} is not R + two digits")
    spec = RemedySpec(code, title, effort, risk, summary, propose, provides)
    REMEDIES[code] = spec
    return spec


# ----------------------------------------------------------------------------- applying changes


def _set(obj: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    current = getattr(obj, head)
    if rest:
        return dataclasses.replace(obj, **{head: _set(current, rest, value)})
    if isinstance(current, Quantity) or (current is None and head in ("max_replicas",)):
        value = Quantity(
            value, (Evidence("(remedy)", None, f"{head} = {value}", Resolution.ASSUMPTION),)
        )
    return dataclasses.replace(obj, **{head: value})


def apply_changes(topology: Topology, changes: tuple[Change, ...]) -> Topology:
    """The topology with the remedy's edits, demand recomputed by the budget model."""
    for change in changes:
        if change.target is ChangeTarget.SERVER:
            topology = dataclasses.replace(
                topology, slots=_set(topology.slots, change.field, change.value)
            )
        elif change.target is ChangeTarget.PGBOUNCER:
            setup = topology.pgbouncer or PgbouncerSetup(
                "transaction",
                None,
                None,
                None,
                None,
                pairs=("app/app",),
                service="pgbouncer (proposed)",
            )
            topology = dataclasses.replace(
                topology, pgbouncer=_set(setup, change.field, change.value)
            )
        else:
            groups = tuple(
                _set(g, change.field, change.value) if change.target == g.name else g
                for g in topology.groups
            )
            topology = dataclasses.replace(topology, groups=groups)
    return budget.recompute(topology)


def predict(topology: Topology, remedy: Remedy) -> Demand | None:
    """Re-run the budget model with the remedy applied (what `predicted` holds)."""
    return apply_changes(topology, remedy.changes).demand


_MISSING = object()


def _current(topology: Topology, target: ChangeTarget | str, field: str) -> list[object]:
    """The values a `Change` would overwrite: one per holder it targets (the server's slots,
    pgbouncer's setup, or the group of that name)."""
    if target is ChangeTarget.SERVER:
        holders: list[object] = [topology.slots]
    elif target is ChangeTarget.PGBOUNCER:
        holders = [topology.pgbouncer] if topology.pgbouncer is not None else []
    else:
        holders = [g for g in topology.groups if g.name == target]
    values = []
    for holder in holders:
        value: object = holder
        for part in field.split("."):
            value = getattr(value, part, _MISSING)
        values.append(value.value if isinstance(value, Quantity) else value)
    return values or [_MISSING]


def changes_hold(remedy: Remedy, topology: Topology | None) -> bool:
    """Every model edit the remedy makes is already true of the topology (the inverse of
    `apply_changes`: after it, they all hold)."""
    if topology is None or not remedy.changes:
        return False
    return all(
        all(current == change.value for current in _current(topology, change.target, change.field))
        for change in remedy.changes
    )
