"""Supply against demand: usable slots, the audited demand per group, the observed peaks.

Usable slots come from the most direct source there is: the live server (the probe's own
computation for the role, else `max_connections - superuser_reserved_connections -
reserved_connections`), else the audit's budget (which may rest on PostgreSQL's defaults).
Each figure keeps the sentence that says where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgslots.deploy.model import ProcessGroup, Quantity, Topology
from pgslots.diagnosis import BackendSeries, Capacity, GroupBudget
from pgslots.events.model import BackendPoint, Incident
from pgslots.events.serverlog import SERVER_LOG_FORMATS
from pgslots.evidence import Resolution
from pgslots.live.model import Snapshot


def _quantity_source(q: Quantity) -> str:
    if not q.evidence:
        return "unknown" if q.value is None else "given"
    e = q.evidence[0]
    if e.resolution is Resolution.LIBRARY_DEFAULT:
        return "PostgreSQL default"
    return e.location()


def usable_slots(
    snapshot: Snapshot | None, topology: Topology | None
) -> tuple[int | None, int | None, str, bool]:
    """(usable, max_connections, basis, assumed): the live server first, then the audit's
    budget, then the audit's figure for PostgreSQL's default max_connections (flagged)."""
    if snapshot is not None and snapshot.max_connections is not None:
        reserved = snapshot.reserved_connections or 0
        superuser = snapshot.superuser_reserved_connections or 0
        formula = snapshot.usable_formula or (
            f"{snapshot.max_connections} max_connections - {superuser} superuser_reserved_connections"
            + (
                f" - {reserved} reserved_connections"
                if snapshot.reserved_connections is not None
                else ""
            )
        )
        usable = (
            snapshot.usable_for_role
            if snapshot.usable_for_role is not None
            else snapshot.max_connections - superuser - reserved
        )
        return usable, snapshot.max_connections, f"live server {snapshot.target}: {formula}", False
    if topology is not None:
        slots = topology.slots
        parts = [
            f"{slots.max_connections.value} max_connections ({_quantity_source(slots.max_connections)})",
            f"{slots.superuser_reserved_connections.value} superuser_reserved_connections ({_quantity_source(slots.superuser_reserved_connections)})",
        ]
        if slots.reserved_connections.value:
            parts.append(
                f"{slots.reserved_connections.value} reserved_connections ({_quantity_source(slots.reserved_connections)})"
            )
        if slots.other_clients.value:
            parts.append(
                f"{slots.other_clients.value} other clients ({_quantity_source(slots.other_clients)})"
            )
        if slots.usable is not None:
            basis = slots.formula or " - ".join(parts)
            return (
                slots.usable,
                slots.max_connections.value,
                f"audit: {basis}; confirm on the server with SHOW",
                False,
            )
        if slots.usable_if_default is not None:
            key = slots.max_connections.unknown or "server.max_connections"
            return (
                slots.usable_if_default,
                100,
                (
                    f"ASSUMED: PostgreSQL's default max_connections 100 minus the reserved slots; the repository does "
                    f"not show the server's setting (--dsn to read it, or --assume {key}=N)"
                ),
                True,
            )
    return (
        None,
        None,
        "no live server and no repository: give --dsn, or --repo for PostgreSQL's defaults",
        False,
    )


def conn_max_age_text(group: ProcessGroup) -> str:
    policy = group.policy
    if policy.pool_max is not None:
        return f"pool {policy.pool_min or 0}..{policy.pool_max}"
    if policy.conn_max_age is None:
        return "None (unlimited)"
    return str(policy.conn_max_age)


def group_budgets(topology: Topology | None) -> tuple[GroupBudget, ...]:
    if topology is None:
        return ()
    return tuple(
        GroupBudget(
            group=g.name,
            kind=g.kind,
            server_model=g.server_model,
            steady=g.demand.steady,
            worst=g.demand.worst,
            bound=g.demand.bound,
            formula=g.demand.formula,
            conn_max_age=conn_max_age_text(g),
        )
        for g in topology.groups
    )


def backend_series(
    incident: Incident | None,
    watch: Sequence[Snapshot],
    watch_path: str,
    snapshot: Snapshot | None,
    server_paths: Sequence[str] = (),
) -> tuple[BackendSeries, ...]:
    """Client backends over time from each source that has them. `server_paths`: the server
    logs read as another source of the incident (`diagnose.sources`), whose summary the
    incident carries."""
    series = []
    server_log = incident.server_log if incident is not None else None
    if server_log is not None and server_log.backends_over_time:
        assert incident is not None
        own = [i.path for i in incident.inputs if i.format in SERVER_LOG_FORMATS]
        paths = ", ".join(own or server_paths)
        series.append(
            _series(
                "server log",
                paths,
                server_log.backends_over_time,
                server_log.peak_backends,
                server_log.peak_at,
            )
        )
    points = tuple(
        BackendPoint(s.taken_at, s.client_backends) for s in watch if s.client_backends is not None
    )
    if points:
        series.append(_series("watch record", watch_path, points))
    if snapshot is not None and snapshot.client_backends is not None:
        series.append(
            _series(
                "probe",
                snapshot.target,
                (BackendPoint(snapshot.taken_at, snapshot.client_backends),),
            )
        )
    return tuple(series)


def _series(
    source: str, path: str, points: Sequence[BackendPoint], peak: int | None = None, peak_at=None
) -> BackendSeries:
    points = tuple(sorted(points, key=lambda p: p.ts))
    if peak is None and points:
        top = max(points, key=lambda p: p.backends)
        peak, peak_at = top.backends, top.ts
    return BackendSeries(source=source, path=path, points=points, peak=peak, peak_at=peak_at)


def capacity(
    snapshot: Snapshot | None, topology: Topology | None, series: Sequence[BackendSeries]
) -> Capacity | None:
    usable, max_connections, basis, assumed = usable_slots(snapshot, topology)
    if usable is None and topology is None and not series:
        return None
    steady = worst = None
    unbounded = False
    bound = "number"
    demand_basis = ""
    if topology is not None and topology.groups:
        if topology.demand is not None:  # on the server itself, after pgbouncer
            steady, worst = topology.demand.steady, topology.demand.worst
            demand_basis = topology.demand.formula
        else:
            steady, worst = topology.total_demand()
        bound = (
            topology.demand.bound
            if topology.demand is not None
            else ("unbounded" if worst is None else "number")
        )
        unbounded = bound == "unbounded"
        demand_basis = demand_basis or " + ".join(
            f"{g.name} {g.demand.steady}..{'unbounded' if g.demand.worst is None else g.demand.worst}"
            for g in topology.groups
        )
    peaks = [s for s in series if s.peak is not None]
    top = max(peaks, key=lambda s: s.peak or 0) if peaks else None
    return Capacity(
        usable=usable,
        usable_basis=basis,
        max_connections=max_connections,
        usable_assumed=assumed,
        steady=steady,
        worst=worst,
        worst_unbounded=unbounded,
        worst_bound=bound,
        demand_basis=demand_basis,
        observed_peak=top.peak if top else None,
        observed_basis=f"{top.source}, {top.path}" if top else "",
    )
