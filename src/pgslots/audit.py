"""The audit use case: a repository path (and assumptions) in, a `Diagnosis` out.

read (`topology.build`) -> assume (`--assume NAME=VALUE`) -> budget -> findings -> remedies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgslots.deploy import budget
from pgslots.deploy.assembly import build
from pgslots.deploy.model import SERVER_FIELDS, ProcessGroup, Quantity, Topology, is_server_count
from pgslots.deploy.readers.cpus import evaluate
from pgslots.diagnosis import Diagnosis, InputStatus, VerificationItem, unknown_item
from pgslots.errors import InputError
from pgslots.evidence import Evidence, Resolution
from pgslots.remedies import propose
from pgslots.rules.audit import audit_findings

GROUP_FIELDS: dict[str, str | None] = {
    "hosts": "hosts",
    "replicas": "replicas",
    "processes": "processes",
    "per_process": "per_process",
    "threads": "per_process",
    "concurrency": None,
    "cpus": None,
    "max_replicas": "max_replicas",
}


def parse_assumptions(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--assume {item!r}: expected NAME=VALUE, e.g. --assume web.hosts=16")
        try:
            number = int(value.strip())
        except ValueError:
            raise InputError(f"--assume {item!r}: the value must be a whole number") from None
        if number < 0:
            raise InputError(f"--assume {item!r}: the value must not be negative")
        out[name.strip()] = number
    return out


def _assumed(name: str, value: int) -> Quantity:
    return Quantity(value, (Evidence("--assume", None, f"{name}={value}", Resolution.ASSUMPTION),))


def set_count(group: ProcessGroup, field: str, quantity: Quantity) -> ProcessGroup:
    """The group with one count set (a field of GROUP_FIELDS: `hosts`, `cpus`, ...)."""
    if field in ("concurrency", "cpus"):
        # Celery's concurrency: children for prefork, threads/greenlets otherwise.
        target = "processes" if group.concurrency_model in ("prefork",) else "per_process"
    else:
        target = str(GROUP_FIELDS[field])  # None only for the Celery counts above
    change: dict[str, Any] = {
        target: quantity
    }  # a field named at run time: mypy checks literal names only
    return dataclasses.replace(group, **change)


def _apply_to_group(group: ProcessGroup, field: str, name: str, value: int) -> ProcessGroup:
    return set_count(group, field, _assumed(name, value))


def _quantities(group: ProcessGroup) -> list[Quantity]:
    return [
        q
        for q in (
            group.hosts,
            group.replicas,
            group.processes,
            group.per_process,
            group.max_replicas,
        )
        if q is not None
    ]


def _apply_named(group: ProcessGroup, name: str, value: int) -> ProcessGroup:
    changes: dict[str, Any] = {
        f: _value_for(getattr(group, f), name, value)
        for f in ("hosts", "replicas", "processes", "per_process", "max_replicas")
        if getattr(group, f) is not None and getattr(group, f).unknown == name
    }
    return dataclasses.replace(group, **changes)


def _value_for(quantity: Quantity, name: str, value: int) -> Quantity:
    """The assumed value; a count written as a formula of the CPU count (`min(cpus, 12)`)
    takes the formula's value for that many CPUs."""
    assumed = _assumed(name, value)
    if quantity.formula:
        computed = evaluate(quantity.formula, value)
        if computed is not None:
            return Quantity(computed, quantity.evidence + assumed.evidence)
    return assumed


def apply_assumptions(topology: Topology, assumptions: dict[str, int]) -> Topology:
    """Set the counts the user supplied; an unknown name is an input error listing valid ones."""
    groups = list(topology.groups)
    slots = topology.slots
    pgbouncer = topology.pgbouncer
    for name, value in assumptions.items():
        scope, _, field = name.rpartition(
            "."
        )  # group and unit names may hold dots: the field never does
        shared = [i for i, g in enumerate(groups) for q in _quantities(g) if q.unknown == name]
        if shared and not is_server_count(name):
            # A count the audit printed by name (a unit's hosts, `worker.cpus`): every group that shares it.
            for index in dict.fromkeys(shared):
                groups[index] = _apply_named(groups[index], name, value)
            continue
        if name in PGBOUNCER_COUNTS and pgbouncer is not None:
            # A pgbouncer whose settings the repository does not hold (a buildpack's, per host).
            key = name.split(".", 1)[1]
            pgbouncer_change: dict[str, Any] = {key: value}
            pgbouncer = dataclasses.replace(pgbouncer, **pgbouncer_change)
            continue
        if name == "settings.conn_max_age":
            # CONN_MAX_AGE the settings do not show: the user says what the running app has.
            groups = [_with_conn_max_age(g, name, value) for g in groups]
            continue
        if scope == "server" and (
            field in SERVER_FIELDS or not any(g.name.split("/", 1)[0] == "server" for g in groups)
        ):
            if field not in SERVER_FIELDS:
                raise InputError(
                    f"--assume {name}: unknown server setting (use one of: {', '.join('server.' + f for f in SERVER_FIELDS)})"
                )
            key = "server_version" if field == "version" else field
            server_change: dict[str, Any] = {key: _assumed(name, value)}
            slots = dataclasses.replace(slots, **server_change)
            continue
        # A container's programs (`webserver/gunicorn`) answer to the container's name too.
        matched = [
            i for i, g in enumerate(groups) if g.name == scope or g.name.startswith(scope + "/")
        ] or [i for i, g in enumerate(groups) if g.kind == scope]
        if not matched or field not in GROUP_FIELDS:
            owners = {g.name for g in groups} | {g.name.split("/", 1)[0] for g in groups}
            valid = sorted(
                {
                    f"{name}.{f}"
                    for name in owners
                    for f in ("hosts", "replicas", "processes", "per_process", "cpus")
                }
                | {q.unknown for g in groups for q in _quantities(g) if q.unknown}
                | {f"server.{f}" for f in SERVER_FIELDS}
                | (set(PGBOUNCER_COUNTS) if pgbouncer is not None else set())
            )
            raise InputError(
                f"--assume {name}: no such count (valid names: {', '.join(valid)}; a group kind such as web.hosts works too)"
            )
        for index in matched:
            groups[index] = _apply_to_group(groups[index], field, name, value)
    updated = dataclasses.replace(
        topology,
        groups=tuple(groups),
        slots=slots,
        pgbouncer=pgbouncer,
        assumptions=dict(assumptions),
    )
    return budget.recompute(updated)


PGBOUNCER_COUNTS = frozenset(
    {"pgbouncer.default_pool_size", "pgbouncer.reserve_pool_size", "pgbouncer.max_db_connections"}
)
"""Settings of a pgbouncer the audit found but whose configuration is not in the repository."""


def _with_conn_max_age(group: ProcessGroup, name: str, value: int) -> ProcessGroup:
    policy = dataclasses.replace(
        group.policy,
        conn_max_age=value,
        conn_max_age_known=True,
        conn_max_age_evidence=_assumed(name, value).evidence,
    )
    return dataclasses.replace(group, policy=policy)


def verification(topology: Topology) -> tuple[VerificationItem, ...]:
    return tuple(unknown_item(unknown) for unknown in topology.unknowns)


def run_audit(
    path: Path,
    assumptions: dict[str, int] | None = None,
    refine: Callable[[Topology], Topology] | None = None,
    project: str | None = None,
    unit: str | None = None,
) -> Diagnosis:
    """`refine` fills what the repository cannot show from another source before the user's
    assumptions apply (`manage.py pgslots audit`: the running project's settings). `project`
    is the folder inside `path` to audit when the tree holds several projects; `unit` the
    deployment unit to audit instead of the one the rules keep."""
    if not path.exists():
        raise InputError("no such file or directory", path=str(path))
    if not path.is_dir():
        raise InputError("expected a directory (the deployment repository)", path=str(path))
    if project:
        inner = (path / project).resolve()
        if not inner.is_dir() or not inner.is_relative_to(path.resolve()):
            raise InputError(
                f"--project {project}: expected a folder inside {path}", path=str(path / project)
            )
        path = path / project
    topology = build(path, unit)
    if refine is not None:
        topology = budget.recompute(refine(topology))
    if assumptions:
        topology = apply_assumptions(topology, assumptions)
    findings = audit_findings(topology)
    remedies = propose(topology)
    offered = {r.code for r in remedies}
    findings = [
        dataclasses.replace(f, remedies=tuple(c for c in f.remedies if c in offered))
        for f in findings
    ]
    return Diagnosis(
        inputs=(InputStatus("repo", True, str(path)),),
        topology=topology,
        findings=tuple(findings),
        remedies=tuple(remedies),
        verification=verification(topology),
        notes=topology.notes,
    )
