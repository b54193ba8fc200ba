"""The connection budget: each group's (steady, worst) demand and the server's usable slots.

Pure functions of a `Topology`, so that a remedy's predicted effect is this same model run
on the topology with the change applied (`recompute`). The rules are domain reference
§7.1 (demand per process group) and §1.2 (usable slots):

| concurrency model | worst per process | held when idle (steady) |
|---|---|---|
| sync (gunicorn sync, WSGI) | 1 | 1 if persistent (CONN_MAX_AGE != 0) else 0 |
| threads (gthread, uWSGI threads) | threads | threads if persistent else 0 |
| greenlets (gevent/eventlet) | worker_connections | same if persistent else 0 |
| asgi, Django >= 4.0 | in-flight requests: unbounded unless limited; **unbounded when persistent (leak)** | 1 if persistent else 0 |
| asgi, Django 3.2 | 1 (one sync thread) | 1 if persistent else 0 |
| asgi, Django 5.0.0/5.0.1 | unbounded (#35059) | 1 if persistent else 0 |
| Celery prefork/solo (per child) | 1 | Celery >= 5.6: 0; else 1 if persistent |
| Celery threads/gevent (per process) | concurrency | Celery >= 5.6: 0; else concurrency if persistent |
| beat with DatabaseScheduler | 1 | 1 |
| long-running management command | 1 | 1 (opened outside a request: never closed by CONN_MAX_AGE) |
| one-shot job (migrate, collectstatic) | 1 | 0 (it exits) |
| RQ worker (a work horse forked per job) | 1 | 0 (the horse exits after its job) |
| another program's own pool (FreeRADIUS rlm_sql) | pool max | pool min |
| Django pool (5.1+), any model | max_size | min_size (Celery >= 5.6 prefork: 0, the pool is closed per task) |

times hosts x containers x processes x DB aliases on the same server. With pgbouncer in
front, the server sees at most the pools: pairs x (default_pool_size + reserve_pool_size),
capped by max_db_connections.

Unknown counts are taken at their floor (1) and reported as unknowns; `--assume` sets them.
"""

from __future__ import annotations

import dataclasses

from pgslots.deploy.model import (
    Bound,
    Demand,
    PgbouncerSetup,
    ProcessGroup,
    Quantity,
    SlotBudget,
    Topology,
    Unknown,
    combine_bounds,
    is_server_count,
)
from pgslots.deploy.readers.cpus import evaluate
from pgslots.versions import exact_version

PG_DEFAULT_MAX_CONNECTIONS = 100
PG_DEFAULT_SUPERUSER_RESERVED = 3
PGBOUNCER_DEFAULT_POOL_SIZE = 20
PGBOUNCER_DEFAULT_MAX_CLIENT_CONN = 100


def floor(quantity: Quantity | None, default: int | None = None) -> int:
    """The value, or while unknown its floor (the quantity's own, else `default`, else 1)."""
    if quantity is None:
        return 1 if default is None else default
    if quantity.value is not None:
        return quantity.value
    if quantity.formula:
        at_one = evaluate(quantity.formula, 1)  # a count written from the CPU count, at one CPU
        if at_one is not None:
            return max(1, at_one)  # `cpus // 2` on one CPU still runs a process
    if default is not None and quantity.floor == 1:
        return default
    return quantity.floor


def is_unknown_group(group: ProcessGroup) -> bool:
    """A group pgslots cannot model whose processes or per-process connections nobody has
    supplied: its demand is unknown, never a floor that could read as "fits"."""
    return group.concurrency_model == "unmodelled" and (
        group.processes.value is None or group.per_process.value is None
    )


def is_unbounded(quantity: Quantity) -> bool:
    return quantity.value is None and quantity.unknown is None


def persistent(group: ProcessGroup) -> bool:
    """Connections kept between requests/tasks. An unknown CONN_MAX_AGE counts as persistent
    (the worse case), and the report lists it as an unknown."""
    policy = group.policy
    return policy.conn_max_age != 0 or not policy.conn_max_age_known


def per_process(group: ProcessGroup, topology: Topology) -> tuple[int, int | None, str]:
    """(held when idle, worst, why) for one process and one alias."""
    model = group.concurrency_model
    policy = group.policy
    django = exact_version(topology.versions, "django")
    celery = exact_version(topology.versions, "celery")
    celery_closes = celery is not None and celery >= (5, 6)
    keeps = persistent(group)
    c_unbounded = is_unbounded(group.per_process)
    c = floor(group.per_process)
    if model == "none":
        return 0, 0, "no database connection"
    if model == "unmodelled":
        # Supplied with --assume: a program we cannot see is taken at its worst, idle or not.
        return (
            c,
            (None if c_unbounded else c),
            "a program pgslots does not model: counts from --assume",
        )
    if model == "job":
        # It exits: nothing held between deploys; while it runs, one connection (its pool's at most).
        return (
            0,
            (policy.pool_max or 1),
            "a one-shot run (it exits): "
            + ("its pool while it runs" if policy.pool_max else "one connection while it runs"),
        )
    if model == "client-pool":
        # Another program's own pool (FreeRADIUS): `min` kept open, `max` at most; per_process is max.
        held = policy.pool_min if policy.pool_min is not None else c
        return held, (None if c_unbounded else c), f"its own pool: {held} kept open, at most {c}"
    if model == "fork-per-job":
        # rq's Worker forks a work horse per job; the horse's connections end when it exits.
        return (
            0,
            (policy.pool_max or 1),
            "a work horse forked per job: its connection ends when the job does",
        )
    if policy.pool_max is not None and not policy.pool_max_known:
        # max_size not readable: the pool bounds nothing we can see; one per concurrent user.
        low = policy.pool_min or 0
        return (
            low,
            None if c_unbounded else max(low, c),
            f"pool: min_size {low} held, max_size unknown (its processes' concurrency at worst)",
        )
    if policy.pool_max is not None:
        low = policy.pool_min if policy.pool_min is not None else policy.pool_max
        if model == "prefork" and celery_closes:
            return (
                0,
                policy.pool_max,
                f"pool max_size {policy.pool_max} per child, closed after each task (Celery >= 5.6)",
            )
        return low, policy.pool_max, f"pool: min_size {low} held, max_size {policy.pool_max}"
    if model == "beat-db":
        return 1, 1, "DatabaseScheduler: one connection"
    if model == "command":
        return (
            1,
            1,
            "opened outside the request cycle (a management command, a direct Lambda handler): its connection stays open",
        )
    if model == "greenlets" and keeps:
        # domain reference 7.1: a finished greenlet's persistent connection is reclaimed only by GC (gunicorn #996)
        return (
            1,
            None,
            "gevent with persistent connections: finished greenlets' connections wait for GC, unbounded",
        )
    if model in ("sync", "threads", "greenlets"):
        return (
            (c if keeps else 0),
            (None if c_unbounded else c),
            ("persistent" if keeps else "closed after each request"),
        )
    if model == "asgi":
        if django is not None and django < (4, 0):
            return (1 if keeps else 0), 1, "Django < 4.0 ASGI: one sync thread per process"
        if django is not None and django[:2] == (5, 0) and (django + (0, 0))[2] <= 1:
            return (1 if keeps else 0), None, "Django 5.0.0/5.0.1 ASGI leaks connections (#35059)"
        if keeps:
            return 1, None, "ASGI with persistent connections leaks one per request thread (#33497)"
        return (
            0,
            (None if c_unbounded else c),
            (
                "one per in-flight request, no limit"
                if c_unbounded
                else "one per in-flight request, limited"
            ),
        )
    if model in ("prefork", "solo"):
        return (
            (0 if celery_closes else (1 if keeps else 0)),
            1,
            ("closed after each task (Celery >= 5.6)" if celery_closes else "per child"),
        )
    if model in ("celery-threads", "celery-green"):
        steady = 0 if celery_closes else (c if keeps else 0)
        return steady, (None if c_unbounded else c), "one per thread/greenlet"
    return 0, None, f"unknown model {model}"


def group_demand(group: ProcessGroup, topology: Topology) -> Demand:
    if is_unknown_group(group):
        missing = [
            q.unknown for q in (group.processes, group.per_process) if q.value is None and q.unknown
        ]
        return Demand(
            None,
            None,
            f"unknown: {group.unknown_reason or 'a program pgslots does not model'}"
            + (
                f" (set --assume {' and --assume '.join(m + '=N' for m in missing)})"
                if missing
                else ""
            ),
            "unknown",
        )
    steady_pp, worst_pp, why = per_process(group, topology)
    hosts = floor(group.hosts)
    replicas = floor(group.replicas)
    replicas_max = floor(group.max_replicas) if group.max_replicas is not None else replicas
    processes = floor(group.processes)
    aliases = max(1, len(group.aliases))
    steady = hosts * replicas * processes * steady_pp * aliases
    # Processes that nothing caps (a Lambda function's concurrent invocations) are unbounded too.
    endless = is_unbounded(group.processes)
    worst = (
        None
        if worst_pp is None or endless
        else hosts * replicas_max * processes * worst_pp * aliases
    )
    mark = lambda q: "?" if q is not None and q.value is None and q.unknown else ""  # noqa: E731
    replica_text = f"{replicas}-{replicas_max}" if replicas_max != replicas else str(replicas)
    formula = (
        f"{hosts}{mark(group.hosts)} host x {replica_text}{mark(group.replicas)} container x "
        f"{'unbounded' if endless else processes}{mark(group.processes)} proc x {('unbounded' if worst_pp is None else worst_pp)} x {aliases} alias"
        f" ({why})"
    )
    return Demand(steady, worst, formula)


def usable_slots(slots: SlotBudget) -> tuple[int | None, str, int]:
    """(usable, formula, usable if max_connections were PostgreSQL's default 100)."""
    reserved_su = floor(slots.superuser_reserved_connections, PG_DEFAULT_SUPERUSER_RESERVED)
    reserved = floor(slots.reserved_connections, 0)
    others = floor(slots.other_clients, 0)

    def compute(max_connections: int) -> int:
        if slots.role_is_superuser:
            return max_connections - others
        return max_connections - reserved_su - reserved - others

    default = compute(PG_DEFAULT_MAX_CONNECTIONS)
    if slots.max_connections.value is None:
        return (
            None,
            f"unknown (max_connections not in the repository; with the default 100: {default})",
            default,
        )
    usable = compute(slots.max_connections.value)
    if slots.role_is_superuser:
        formula = f"{slots.max_connections.value} max_connections - {others} other clients (the app role is a superuser)"
    else:
        formula = (
            f"{slots.max_connections.value} max_connections - {reserved_su} superuser_reserved - "
            f"{reserved} reserved - {others} other clients"
        )
    return usable, formula, default


def pgbouncer_capacity(setup: PgbouncerSetup) -> int | None:
    """Server connections one pgbouncer can open; None for a per-host pgbouncer whose pool size
    the repository does not set (the buildpack's defaults are not in it)."""
    pairs = max(1, len(setup.pairs))
    if setup.default_pool_size is None and setup.per_host:
        return None
    pool = (
        setup.default_pool_size
        if setup.default_pool_size is not None
        else PGBOUNCER_DEFAULT_POOL_SIZE
    )
    total = pairs * (pool + (setup.reserve_pool_size or 0))
    if setup.max_db_connections:
        total = min(total, setup.max_db_connections * pairs)
    return total


def server_demand(topology: Topology) -> Demand:
    """The total on the server: the direct groups, plus pgbouncer's pools for the pooled ones.
    Unbounded if any direct group is, else unknown if any is unknown; steady sums the known."""
    if not topology.groups:
        # No process definition in the repository: the deployment lives elsewhere; its demand is
        # unknown, never a zero.
        return Demand(
            0,
            None,
            "no process group: the repository does not describe how the project runs",
            "unknown",
        )
    direct = [g for g in topology.groups if not g.policy.via_pgbouncer]
    pooled = [g for g in topology.groups if g.policy.via_pgbouncer]
    steady = sum(g.demand.steady or 0 for g in direct)
    bound = combine_bounds([g.demand.bound for g in direct])
    worst = sum(g.demand.worst or 0 for g in direct)
    parts = [f"{g.name} {_s(g.demand.steady)}/{worst_text(g.demand)}" for g in direct]
    if pooled and topology.pgbouncer is not None and topology.pgbouncer.per_host:
        b_steady, b_worst, b_bound, text = _host_pools(pooled, topology.pgbouncer)
        steady += b_steady
        worst += b_worst or 0
        bound = combine_bounds([bound, b_bound])
        parts.append(text)
    elif pooled and topology.pgbouncer is not None:
        capacity = pgbouncer_capacity(topology.pgbouncer) or 0
        client_steady = sum(g.demand.steady or 0 for g in pooled)
        client_bound = combine_bounds([g.demand.bound for g in pooled])
        client_worst = sum(g.demand.worst or 0 for g in pooled)
        min_pool = (topology.pgbouncer.min_pool_size or 0) * max(1, len(topology.pgbouncer.pairs))
        b_steady = min(capacity, max(client_steady, min_pool))
        b_worst = (
            capacity if client_bound != "number" else min(capacity, client_worst)
        )  # the pools cap any client
        steady += b_steady
        worst += b_worst
        parts.append(f"pgbouncer {b_steady}/{b_worst} (pools {capacity})")
    formula = " + ".join(parts) if parts else "no process group"
    return Demand(steady, worst if bound == "number" else None, formula, bound)


def _host_pools(
    pooled: list[ProcessGroup], setup: PgbouncerSetup
) -> tuple[int, int | None, Bound, str]:
    """A pgbouncer on every host: each host of a pooled group opens at most its pools on the
    server, whatever its processes ask for. (steady, worst, bound, formula)."""
    capacity = pgbouncer_capacity(setup)
    if capacity is None:
        names = ", ".join(g.name for g in pooled)
        return (
            0,
            None,
            "unknown",
            f"pgbouncer on each host of {names}: pool size unknown (set --assume pgbouncer.default_pool_size=N)",
        )
    min_pool = (setup.min_pool_size or 0) * max(1, len(setup.pairs))
    steady = worst = 0
    for group in pooled:
        pools = floor(group.hosts) * floor(group.replicas)
        steady += min(pools * capacity, max(group.demand.steady or 0, pools * min_pool))
        cap = pools * capacity
        worst += cap if group.demand.bound != "number" else min(cap, group.demand.worst or 0)
    return (
        steady,
        worst,
        "number",
        f"pgbouncer on each host {steady}/{worst} (pools {capacity} per host)",
    )


def known_worst(topology: Topology) -> int:
    """The worst case of the groups pgslots can bound, on the server (after pgbouncer's caps):
    with unknown groups beside them, the total is at least this."""
    known = [g for g in topology.groups if g.demand.bound == "number"]
    return (
        server_demand(dataclasses.replace(topology, groups=tuple(known))).worst or 0 if known else 0
    )


def unknown_groups(topology: Topology) -> list[ProcessGroup]:
    return [g for g in topology.groups if g.demand.unknown]


def worst_text(demand: Demand) -> str:
    """A worst case as printed: the number, "unbounded" or "unknown"."""
    return (
        str(demand.worst) if demand.bound == "number" and demand.worst is not None else demand.bound
    )


def _s(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def unknowns(topology: Topology) -> tuple[Unknown, ...]:
    """Every count the repository could not show, with what one more unit adds at worst."""
    out: list[Unknown] = []
    for group in topology.groups:
        at_zero = any(
            q.value is None and q.unknown and q.floor == 0 for q in (group.hosts, group.replicas)
        )
        if (
            group.demand.bound == "number"
            and group.demand.worst == 0
            and group.demand.steady == 0
            and not at_zero
        ):
            continue
        # A count shared by a container's programs is asked about the container.
        owner = lambda q: q.unknown.rsplit(".", 1)[0] if q.unknown else group.name  # noqa: E731, B023 - used in this iteration
        for quantity, question in (
            (group.hosts, f"How many hosts (machines, VMs, dynos) run {owner(group.hosts)}?"),
            (group.replicas, f"How many containers of {owner(group.replicas)} run on each host?"),
            (group.processes, f"How many processes does {group.name} run per container?"),
            (
                group.per_process,
                f"How many concurrent connections can one {group.name} process open?",
            ),
        ):
            if quantity.value is None and quantity.unknown:
                if quantity.unknown.endswith(".cpus") and quantity.formula:
                    question = f"How many CPUs does each host of {group.name} have (its count is {quantity.formula})?"
                elif quantity.unknown.endswith(".cpus"):
                    question = f"How many CPUs does each host of {group.name} have (Celery's default concurrency is os.cpu_count())?"
                units = floor(quantity)
                if units == 0:
                    # A unit that may run on no host: what its first host adds.
                    one = group_demand(
                        dataclasses.replace(group, hosts=Quantity(1))
                        if quantity is group.hosts
                        else dataclasses.replace(group, replicas=Quantity(1)),
                        topology,
                    )
                    adds = one.worst
                else:
                    adds = (
                        None if group.demand.worst is None else group.demand.worst // max(1, units)
                    )
                out.append(
                    Unknown(
                        quantity.unknown, question, quantity.floor, adds, None, group.demand.bound
                    )
                )
    for gap in topology.django.gaps if topology.django is not None else ():
        if gap.name in topology.assumptions:
            continue
        # Settings the repository cannot show: their question says where they would come from.
        assumable = (
            " (--assume settings.conn_max_age=SECONDS)" if gap.setting == "CONN_MAX_AGE" else ""
        )
        out.append(
            Unknown(
                gap.name,
                f"{gap.setting} is not readable from the repository: {gap.source}{assumable}",
                0,
                None,
                adds_bound="unknown",
            )
        )
    bouncer = topology.pgbouncer
    if (
        bouncer is not None
        and bouncer.per_host
        and bouncer.default_pool_size is None
        and any(g.policy.via_pgbouncer for g in topology.groups)
    ):
        out.append(
            Unknown(
                "pgbouncer.default_pool_size",
                f"What is the pool size of the pgbouncer on each host ({bouncer.service}; "
                "PGBOUNCER_DEFAULT_POOL_SIZE, plus PGBOUNCER_RESERVE_POOL_SIZE)?",
                0,
                None,
                adds_bound="unknown",
            )
        )
    slots = topology.slots
    if slots.max_connections.value is None:
        out.append(
            Unknown(
                "server.max_connections",
                "What is the server's max_connections (SHOW max_connections)?",
                PG_DEFAULT_MAX_CONNECTIONS,
                None,
            )
        )
    if slots.other_clients.value is None or slots.other_clients.unknown:
        out.append(
            Unknown(
                "server.other_clients",
                "How many connections do other clients hold (admin sessions, monitoring, migrations, other apps)?",
                0,
                None,
            )
        )
    # One count can be shared (the hosts of a container whose programs are several groups):
    # one more unit then adds what it adds to each of them.
    merged: dict[str, Unknown] = {}
    for item in out:
        known = merged.get(item.name)
        if known is None:
            merged[item.name] = item
        elif is_server_count(item.name):
            continue
        else:
            adds = (
                None
                if known.adds_per_unit is None or item.adds_per_unit is None
                else known.adds_per_unit + item.adds_per_unit
            )
            bound = combine_bounds([known.adds_bound, item.adds_bound])
            merged[item.name] = dataclasses.replace(known, adds_per_unit=adds, adds_bound=bound)
    return tuple(merged.values())


def recompute(topology: Topology) -> Topology:
    """Demand of every group, the usable slots, pgbouncer's capacity and the server total."""
    groups = tuple(
        dataclasses.replace(g, demand=group_demand(g, topology)) for g in topology.groups
    )
    updated = dataclasses.replace(topology, groups=groups)
    usable, formula, default = usable_slots(topology.slots)
    slots = dataclasses.replace(
        topology.slots, usable=usable, formula=formula, usable_if_default=default
    )
    pgbouncer = topology.pgbouncer
    if pgbouncer is not None:
        pgbouncer = dataclasses.replace(pgbouncer, capacity=pgbouncer_capacity(pgbouncer))
    updated = dataclasses.replace(updated, slots=slots, pgbouncer=pgbouncer)
    demand = server_demand(updated)
    if pgbouncer is not None:
        pooled = [g for g in groups if g.policy.via_pgbouncer]
        if pooled:
            pgbouncer = dataclasses.replace(pgbouncer, server_side_demand=pgbouncer.capacity)
    updated = dataclasses.replace(updated, demand=demand, pgbouncer=pgbouncer)
    return dataclasses.replace(updated, unknowns=unknowns(updated))


def effective_usable(topology: Topology) -> tuple[int, bool]:
    """(usable slots, whether it is known) — the default-based value when unknown."""
    slots = topology.slots
    if slots.usable is not None:
        return slots.usable, True
    return (slots.usable_if_default if slots.usable_if_default is not None else 97), False
