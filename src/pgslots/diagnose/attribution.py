"""Failing transactions mapped to the deployment's process groups.

An APM names the transaction that failed; the audit knows which process groups exist. The
join is by the transaction's kind (`pgslots.events.transactions`: web, worker, other), and
counts the web failures recorded before their view ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgslots.deploy.model import ProcessGroup, Topology
from pgslots.diagnosis import GroupAttribution, TransactionCount
from pgslots.events import transactions
from pgslots.events.model import FacetRow, Incident
from pgslots.events.timeline import NOT_SET

KIND_RULES = {
    "web": "web transactions (views, middleware) run in the web processes",
    "worker": "Celery task transactions run in the worker processes",
    "other": "background transactions that are neither web requests nor Celery tasks",
    "unattributed": "the events name no transaction (server logs do not); set application_name per "
    "process group to tell them apart",
}


def _groups_of(topology: Topology | None, kind: str) -> list[ProcessGroup]:
    if topology is None:
        return []
    return [g for g in topology.groups if g.kind == kind]


def attribute(incident: Incident, topology: Topology | None) -> tuple[GroupAttribution, ...]:
    """Every event that names its transaction, assigned to one process group, largest first.
    Events without a transaction name (a server log's, or an APM event without one) are no
    process group: they are left out, never filed under an invented one."""
    rows: Sequence[FacetRow] = [
        r for r in incident.facets.get("transaction", ()) if r.value and r.value != NOT_SET
    ]
    by_kind: dict[str, list[FacetRow]] = {}
    for row in rows:
        by_kind.setdefault(transactions.kind(row.value).value, []).append(row)
    result = []
    for kind, members in by_kind.items():
        count = sum(r.count for r in members)
        groups = _groups_of(topology, kind)
        name = " + ".join(g.name for g in groups) if groups else kind
        rule = KIND_RULES[kind]
        if groups:
            models = ", ".join(sorted({g.server_model for g in groups}))
            rule = f"{rule} ({models})"
        elif topology is not None and kind in ("web", "worker"):
            rule = f"{rule}; the audited repository has no {kind} group"
        result.append(
            GroupAttribution(
                group=name,
                kind=kind,
                count=count,
                share=count / incident.total if incident.total else 0.0,
                before_view=sum(r.count for r in members if transactions.before_view(r.value)),
                transactions=tuple(TransactionCount(r.value, r.count) for r in members if r.value),
                rule=rule,
                audited=bool(groups),
            )
        )
    return tuple(sorted(result, key=lambda a: -a.count))
