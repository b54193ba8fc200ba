"""Failing transactions mapped to the deployment's process groups.

An APM names the transaction that failed; the audit knows which process groups exist. The
join is by the transaction's kind, as the agents name them:

* New Relic `WebTransaction/...` (views, middleware, URIs) -> the web group;
  `OtherTransaction/Celery/<task>` -> the Celery worker group;
  other `OtherTransaction/...` (management commands, scripts) -> "other".
* Sentry: a transaction that is a URL route (`/api/...`) -> web; a dotted task name under a
  `tasks` module -> worker.

A web transaction still named after a middleware (`...Middleware.process_view`) failed
before its view ran: New Relic renames the transaction to the view only when the view is
entered (domain reference §3.4), so such a name says "before the view", not "in CSRF".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pgslots.deploy.model import ProcessGroup, Topology
from pgslots.diagnosis import GroupAttribution, TransactionCount
from pgslots.events.model import FacetRow, Incident
from pgslots.events.timeline import NOT_SET

_MIDDLEWARE = re.compile(r"[Mm]iddleware[^/]*$")
_CELERY_TASK = re.compile(r"(^|\.)tasks?\.[A-Za-z_][\w]*$")

KIND_RULES = {
    "web": "web transactions (views, middleware) run in the web processes",
    "worker": "Celery task transactions run in the worker processes",
    "other": "background transactions that are neither web requests nor Celery tasks",
    "unattributed": "the events name no transaction (server logs do not); set application_name per "
    "process group to tell them apart",
}


def transaction_kind(name: str) -> str:
    """"web", "worker", "other" or "unattributed" for one transaction name."""
    if not name:
        return "unattributed"
    if name.startswith("WebTransaction/"):
        return "web"
    if name.startswith("OtherTransaction/Celery/"):
        return "worker"
    if name.startswith("OtherTransaction/"):
        return "other"
    if name.startswith("/"):
        return "web"
    if _CELERY_TASK.search(name):
        return "worker"
    return "other"


def before_view(name: str) -> bool:
    """The transaction still carried a middleware's name: the view had not been entered."""
    return name.startswith("WebTransaction/") and bool(_MIDDLEWARE.search(name))


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
        by_kind.setdefault(transaction_kind(row.value), []).append(row)
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
                before_view=sum(r.count for r in members if before_view(r.value)),
                transactions=tuple(TransactionCount(r.value, r.count) for r in members if r.value),
                rule=rule,
                audited=bool(groups),
            )
        )
    return tuple(sorted(result, key=lambda a: -a.count))
