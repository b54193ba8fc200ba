"""The static audit with the settings unknowns filled from the running project.

The repository shows how processes start; the running project shows what its settings
computed. Only what the audit could not read is filled (a CONN_MAX_AGE read from a variable
set nowhere in the repository, Celery's worker_concurrency, the server's max_connections from
PGSLOTS, the installed versions), each with evidence of resolution "runtime"; what the
repository states stays as read. A note lists every value filled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pgslots.audit import set_count
from pgslots.deploy.model import (
    ConnectionPolicy,
    ProcessGroup,
    Quantity,
    SlotBudget,
    Topology,
    VersionFact,
)
from pgslots.django.facts import AliasSettings, ProjectSettings
from pgslots.evidence import Resolution

NO_CONNECTIONS = ("none",)


def _policy(
    policy: ConnectionPolicy, alias: AliasSettings, project: ProjectSettings, settings_read: bool
) -> ConnectionPolicy:
    evidence = (alias.evidence(project.settings_module, "CONN_MAX_AGE", alias.conn_max_age),)
    updated = dataclasses.replace(
        policy,
        conn_max_age=alias.conn_max_age,
        conn_max_age_evidence=evidence,
        conn_max_age_known=True,
    )
    if settings_read:
        return updated
    pool_min, pool_max = alias.pool if alias.pool is not None else (None, None)
    return dataclasses.replace(
        updated,
        health_checks=alias.health_checks,
        pool_min=pool_min,
        pool_max=pool_max,
        pool_evidence=(alias.evidence(project.settings_module, "OPTIONS", {"pool": alias.pool}),)
        if alias.pool
        else (),
        disable_server_side_cursors=alias.disable_server_side_cursors,
        atomic_requests=alias.atomic_requests,
    )


def _group(
    group: ProcessGroup, project: ProjectSettings, settings_read: bool, filled: list[str]
) -> ProcessGroup:
    default = next((a for a in project.postgresql_aliases if a.alias == "default"), None)
    if group.concurrency_model in NO_CONNECTIONS:
        return group
    if default is not None and not group.policy.conn_max_age_known:
        group = dataclasses.replace(
            group, policy=_policy(group.policy, default, project, settings_read)
        )
        filled.append(f"{group.name}: CONN_MAX_AGE={default.conn_max_age}")
    celery = project.celery
    if group.kind == "worker" and celery is not None and celery.concurrency is not None:
        for quantity in (group.processes, group.per_process):
            if quantity.value is None and (quantity.unknown or "").endswith(".cpus"):
                known = Quantity(
                    celery.concurrency,
                    (project.evidence(f"worker_concurrency = {celery.concurrency}"),),
                )
                group = set_count(group, "concurrency", known)
                filled.append(f"{group.name}: worker_concurrency={celery.concurrency}")
                break
    return group


def _defaulted(quantity: Quantity) -> bool:
    """Nothing in the repository set it: PostgreSQL's default stands in, which PGSLOTS overrides."""
    return bool(quantity.evidence) and all(
        e.resolution is Resolution.LIBRARY_DEFAULT for e in quantity.evidence
    )


def _slots(slots: SlotBudget, project: ProjectSettings, filled: list[str]) -> SlotBudget:
    budget = project.budget
    changes: dict[str, Any] = {}  # field name -> Quantity, for dataclasses.replace
    for field in (
        "max_connections",
        "superuser_reserved_connections",
        "reserved_connections",
        "other_clients",
    ):
        value = getattr(budget, field)
        current: Quantity = getattr(slots, field)
        if value is not None and (current.value is None or current.unknown or _defaulted(current)):
            changes[field] = Quantity(value, (project.evidence(f"PGSLOTS['{field}'] = {value}"),))
            filled.append(f"server.{field}={value}")
    return dataclasses.replace(slots, **changes) if changes else slots


def _versions(
    topology: Topology, project: ProjectSettings, filled: list[str]
) -> tuple[VersionFact, ...]:
    known = {v.package for v in topology.versions}
    installed = {
        "django": project.django_version_text,
        "psycopg": project.psycopg_version,
        "psycopg2": project.psycopg2_version,
    }
    if project.celery is not None and project.celery.version:
        installed["celery"] = ".".join(map(str, project.celery.version))
    added = []
    for package, version in installed.items():
        if version and package not in known:
            added.append(
                VersionFact(package, version, project.evidence(f"{package} {version} installed"))
            )
            filled.append(f"{package} {version}")
    return topology.versions + tuple(added)


def fill_from_runtime(topology: Topology, project: ProjectSettings) -> Topology:
    """The topology with its settings unknowns set from `project`, marked "runtime"."""
    filled: list[str] = []
    settings_read = topology.django is not None and bool(topology.django.aliases)
    groups = tuple(_group(g, project, settings_read, filled) for g in topology.groups)
    slots = _slots(topology.slots, project, filled)
    versions = _versions(topology, project, filled)
    notes = topology.notes
    if filled:
        notes += (
            f"Filled from the running project's settings ({project.settings_module}, resolution runtime): {'; '.join(filled)}.",
        )
    return dataclasses.replace(topology, groups=groups, slots=slots, versions=versions, notes=notes)
