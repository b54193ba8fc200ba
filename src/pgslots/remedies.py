"""The remedy catalogue: what to change, at what effort and risk, and what it is predicted
(by the budget model) or measured (by a lab run) to do.

Each kind is declared once with `define_remedy` (see `pgslots.remedy`); rules cite these
objects in their findings and lab scenarios say which one they measure. A remedy is
proposed only when it applies and is not already in place; its predicted effect is always
computed by re-running the budget model on the topology with the change applied, never
written by hand.
"""

from __future__ import annotations

from pgslots.deploy import budget
from pgslots.deploy.model import ChangeTarget, ProcessGroup, Topology
from pgslots.evidence import Evidence
from pgslots.remedy import (
    REMEDIES,
    Change,
    Mechanism,
    Proposal,
    Remedy,
    apply_changes,
    define_remedy,
)
from pgslots.versions import exact_version, lower_bound

# ----------------------------------------------------------------------------- helpers


def _db_groups(t: Topology) -> list[ProcessGroup]:
    """The groups a remedy can change: not those without a connection, nor programs pgslots does
    not model (their settings and options are unknown)."""
    return [g for g in t.groups if g.concurrency_model not in ("none", "unmodelled")]


def _asgi_unbounded(t: Topology) -> list[ProcessGroup]:
    return [
        g
        for g in t.groups
        if g.concurrency_model == "asgi" and g.demand.unbounded and g.policy.pool_max is None
    ]


def _units(g: ProcessGroup) -> int:
    replicas = (
        budget.floor(g.max_replicas) if g.max_replicas is not None else budget.floor(g.replicas)
    )
    return budget.floor(g.hosts) * replicas * budget.floor(g.processes) * max(1, len(g.aliases))


def _problem(t: Topology) -> bool:
    usable, _ = budget.effective_usable(t)
    if t.demand is None:
        return False
    return t.demand.unbounded or budget.known_worst(t) > usable or (t.demand.steady or 0) > usable


def _loc(evidence: tuple[Evidence, ...]) -> str:
    located = [e for e in evidence if e.line is not None]
    return (
        located[0].location()
        if located
        else (evidence[0].location() if evidence else "the settings")
    )


def _cma_change(groups: list[ProcessGroup], value: int) -> str:
    g = groups[0]
    where = _loc(g.policy.conn_max_age_evidence)
    names = ", ".join(x.name for x in groups)
    if g.policy.conn_max_age_env:
        return (
            f"set {g.policy.conn_max_age_env}={value} in the environment of {names} (read by {where}); "
            f"or change the default at {where}"
        )
    return f"{where}: set CONN_MAX_AGE to {value} for {names}"


# ----------------------------------------------------------------------------- the catalogue


def _r01_conn_max_age_zero(t: Topology) -> Proposal | None:
    groups = [
        g
        for g in t.groups
        if g.concurrency_model == "asgi" and budget.persistent(g) and g.policy.pool_max is None
    ]
    if not groups:
        return None
    return Proposal(
        tuple(Change(g.name, "policy.conn_max_age", 0) for g in groups)
        + tuple(Change(g.name, "policy.conn_max_age_known", True) for g in groups),
        _cma_change(groups, 0),
        (
            "Stops the leak: under ASGI each request runs on its own thread, whose persistent connection is then never reused (Django #33497).",
            "It does not bound ASGI concurrency: each in-flight request still opens one connection.",
        ),
        groups[0].policy.conn_max_age_evidence[:1],
    )


USEFUL_FLOOR = 2
"""The least per-process concurrency a remedy proposes (uvicorn `limit_concurrency`, gunicorn
`--threads`, a pool's `max_size`). At 1 a process serves one request at a time: every other
request in that process waits (or, with `limit_concurrency`, gets HTTP 503), so a limit of 1
hides the shortage of slots by serialising the process; it is a slowdown, not a fix. When the
slots left allow less than this per process, the remedy is sized at the floor and predicted
there (so the model says it does not fit), and says what would make room. Every renderer
reads this value; none sizes a remedy on its own."""


def _others_worst(t: Topology, groups: list[ProcessGroup]) -> int:
    """The worst-case connections of the groups a remedy does not change (on the server)."""
    others = [
        g
        for g in t.groups
        if g not in groups and g.concurrency_model != "none" and not g.policy.via_pgbouncer
    ]
    return sum(g.demand.worst or 0 for g in others)


def _per_process_budget(t: Topology, groups: list[ProcessGroup]) -> int:
    """The usable slots left by the other groups, per process of `groups` (may be below the floor)."""
    usable, _ = budget.effective_usable(t)
    units = sum(_units(g) for g in groups)
    return max(1, (usable - _others_worst(t, groups)) // max(1, units))


def at_floor(budgeted: int, option: str, units: int) -> tuple[int, tuple[str, ...]]:
    """(the size to propose, the caveat saying why) for a per-process count the budget allows:
    the budgeted count itself, or `USEFUL_FLOOR` with the reason when the budget is below it."""
    if budgeted >= USEFUL_FLOOR:
        return budgeted, ()
    reason = (
        f"The slots left allow only {option} {budgeted} per process ({units} processes): a per-process limit of 1 "
        f"serialises every request in that process, so this is sized at the floor of {USEFUL_FLOOR} instead and does "
        f"not fit on its own: it needs more slots (raise max_connections, {RAISE_MAX_CONNECTIONS.code}) or fewer processes."
    )
    return USEFUL_FLOOR, (reason,)


def _r02_limit_asgi(t: Topology) -> Proposal | None:
    groups = _asgi_unbounded(t)
    if not groups:
        return None
    units = sum(_units(g) for g in groups)
    limit, floored = at_floor(_per_process_budget(t, groups), "limit_concurrency", units)
    changes = tuple(Change(g.name, "per_process", limit) for g in groups)
    changes += tuple(
        Change(g.name, "policy.conn_max_age", 0) for g in groups if budget.persistent(g)
    )
    texts = [_limit_text(g, limit) for g in groups]
    caveats = (
        "Requests over the limit get HTTP 503 instead of opening a connection.",
        *(
            floored
            or (
                f"{limit} per process is the usable slots left by the other groups divided by {units} processes (hosts at their floor: recompute with --assume).",
            )
        ),
    )
    if any(budget.persistent(g) for g in groups):
        caveats += (
            "Includes CONN_MAX_AGE=0 (R01): a limit does not stop the persistent-connection leak.",
        )
    switch = [g for g in groups if g.server_model.startswith(("asgi (daphne", "asgi (hypercorn"))]
    if switch:
        caveats += (
            f"{', '.join(g.name for g in switch)}: the server has no concurrency limit of its own, so the change "
            "is a switch to uvicorn (it serves WebSockets too; the old server's own options do not carry over).",
        )
    return Proposal(changes, "; ".join(texts), caveats, effort=3 if switch else None)


def _limit_text(g: ProcessGroup, limit: int) -> str:
    """The edit that caps one ASGI group's in-flight requests, in its own server's terms."""
    where = _loc(g.evidence)
    own_class = [e for e in g.per_process.evidence if e.note == "the project's worker class"]
    if own_class:
        return f'{own_class[0].location()}: add "limit_concurrency": {limit} to the CONFIG_KWARGS of this worker class'
    if g.server_model.startswith("asgi (gunicorn"):
        return (
            f"{where}: use a worker class that passes a limit, e.g. `class LimitedUvicornWorker(UvicornWorker): "
            f'CONFIG_KWARGS = {{"loop": "auto", "http": "auto", "limit_concurrency": {limit}}}` and `-k <module>.LimitedUvicornWorker`'
        )
    if g.server_model.startswith("asgi (granian"):
        return f"{where}: add `--backpressure {limit}` to the granian command (or set GRANIAN_BACKPRESSURE={limit})"
    if g.server_model.startswith(("asgi (daphne", "asgi (hypercorn")):
        server = g.server_model[len("asgi (") :].split(")")[0]
        return (
            f"{where}: {server} cannot limit concurrent requests; serve the same application with "
            f"`uvicorn <project>.asgi:application --workers {budget.floor(g.processes)} --limit-concurrency {limit}`"
        )
    return f"{where}: add `--limit-concurrency {limit}` to the uvicorn command"


def _r06_gthread(t: Topology) -> Proposal | None:
    groups = _asgi_unbounded(t)
    if not groups:
        return None
    threads, floored = at_floor(
        _per_process_budget(t, groups), "--threads", sum(_units(g) for g in groups)
    )
    changes = tuple(Change(g.name, "concurrency_model", "threads") for g in groups) + tuple(
        Change(g.name, "per_process", threads) for g in groups
    )
    text = "; ".join(
        f"{_loc(g.evidence)}: serve the WSGI application with threads instead: `gunicorn <project>.wsgi -k gthread --threads {threads}`"
        for g in groups
    )
    return Proposal(
        changes,
        text,
        (
            *floored,
            "Async views and streaming responses lose their event loop.",
            "Each thread holds at most one connection: the ceiling becomes processes x threads.",
        ),
    )


def _r03_pool(t: Topology) -> Proposal | None:
    groups = _db_groups(t)
    if not groups or any(g.policy.pool_max is not None for g in groups) or not _problem(t):
        return None
    if any(g.policy.via_pgbouncer for g in groups):
        return None
    usable, _ = budget.effective_usable(t)
    units = sum(_units(g) for g in groups)
    size, floored = at_floor(max(1, usable // max(1, units)), "a pool max_size of", units)
    changes = tuple(Change(g.name, "policy.pool_max", size) for g in groups) + tuple(
        Change(g.name, "policy.pool_min", 1) for g in groups
    )
    changes += tuple(Change(g.name, "policy.conn_max_age", 0) for g in groups) + tuple(
        Change(g.name, "policy.conn_max_age_known", True) for g in groups
    )
    settings = _settings_file(t)
    text = f'{settings}: DATABASES["default"]["OPTIONS"] = {{"pool": {{"min_size": 1, "max_size": {size}, "timeout": 10}}}} and CONN_MAX_AGE = 0'
    caveats = [
        *(
            floored
            or (
                f"max_size {size} = usable slots / {units} processes that open a pool (every web process, every Celery child).",
            )
        ),
        "A request that waits more than `timeout` for a pooled connection fails with PoolTimeout instead of a server refusal.",
        "Requires psycopg[pool] (psycopg_pool) and psycopg 3.",
    ]
    django = lower_bound(t.versions, "django")
    effort = 2
    if django is None or django < (5, 1):
        caveats.insert(
            0,
            f"Needs Django >= 5.1 (this project has {_version(t, 'django')}): an upgrade comes first.",
        )
        effort = 3
    if exact_version(t.versions, "psycopg") is None and any(
        v.package == "psycopg2" for v in t.versions
    ):
        caveats.append(
            "The project uses psycopg2: Django raises 'Database pooling requires psycopg >= 3'."
        )
        effort += 1
    celery = exact_version(t.versions, "celery")
    if celery and celery >= (5, 6):
        caveats.append(
            "Celery >= 5.6 closes the pool after every task in prefork children: workers reopen it per task."
        )
    return Proposal(changes, text, tuple(caveats), effort=effort)


def _settings_file(t: Topology) -> str:
    """The production settings module: a line added there applies whatever it imports."""
    return t.django.settings_files[0] if t.django and t.django.settings_files else "the settings"


OPTION_NAMES = {
    "threads": "threads",
    "greenlets": "worker_connections",
    "asgi": "limit_concurrency",
    "celery-threads": "concurrency",
    "celery-green": "concurrency",
    "prefork": "concurrency",
}
"""The server option behind each concurrency model's count, as the remedy names it."""


def _version(t: Topology, package: str) -> str:
    return next(
        (f"{v.version} ({v.evidence.location()})" for v in t.versions if v.package == package),
        "an unknown version",
    )


def _r04_pgbouncer(t: Topology) -> Proposal | None:
    groups = _db_groups(t)
    if not groups or all(g.policy.via_pgbouncer for g in groups) or not _problem(t):
        return None
    usable, known = budget.effective_usable(t)
    pool = max(1, usable * 4 // 5)
    changes: tuple[Change, ...] = tuple(
        Change(g.name, "policy.via_pgbouncer", True) for g in groups
    )
    changes += tuple(Change(g.name, "policy.pgbouncer_pool_mode", "transaction") for g in groups)
    changes += tuple(Change(g.name, "policy.disable_server_side_cursors", True) for g in groups)
    changes += tuple(
        Change(g.name, "policy.conn_max_age", 0) for g in groups if g.concurrency_model == "asgi"
    )
    changes += (
        Change(ChangeTarget.PGBOUNCER, "pool_mode", "transaction"),
        Change(ChangeTarget.PGBOUNCER, "default_pool_size", pool),
        Change(ChangeTarget.PGBOUNCER, "reserve_pool_size", 0),
    )
    text = (
        f"run pgbouncer (pool_mode = transaction, default_pool_size = {pool}, max_client_conn above the app's client demand) "
        "and point DATABASE_URL's host at it; set DATABASES[...]['DISABLE_SERVER_SIDE_CURSORS'] = True"
    )
    caveats = (
        f"default_pool_size {pool} = 80% of the {usable} usable slots{'' if known else ' (with the default max_connections)'}, leaving room for migrations and admin sessions.",
        "Transaction pooling breaks session state: SET, LISTEN, WITH HOLD cursors, session advisory locks; server-side cursors must be disabled.",
        "Under ASGI, persistent client connections would still pile up at pgbouncer (max_client_conn): keep CONN_MAX_AGE=0.",
    )
    return Proposal(changes, text, caveats)


def _r05_lower(t: Topology) -> Proposal | None:
    if t.demand is None or t.demand.worst is None:
        return None
    usable, _ = budget.effective_usable(t)
    if t.demand.worst <= usable:
        return None
    factor = usable / t.demand.worst
    changes = []
    texts = []
    for g in _db_groups(t):
        if g.kind == "beat" or g.demand.worst in (None, 0):
            continue
        field = (
            "per_process"
            if g.concurrency_model
            in ("threads", "greenlets", "celery-threads", "celery-green", "asgi")
            else "processes"
        )
        current = getattr(g, field).value or 1
        new = max(USEFUL_FLOOR if field == "per_process" else 1, int(current * factor))
        if new < current:
            changes.append(Change(g.name, field, new))
            source = getattr(g, field).evidence
            option = (
                OPTION_NAMES.get(g.concurrency_model, "workers")
                if field == "per_process" or g.concurrency_model == "prefork"
                else "workers"
            )
            texts.append(f"{g.name}: {option} {current} -> {new} ({_loc(source)})")
    if not changes:
        return None
    return Proposal(
        tuple(changes), "; ".join(texts), ("Less throughput: fewer requests or tasks in parallel.",)
    )


BACKEND_MB = 10
"""Memory a server pays per extra connection slot in use, in MB, for the R07 estimate. What it
rests on (PostgreSQL's documentation, "Resource Consumption" and "Connections and
Authentication"): every connection is a backend process of its own; an idle backend holds a
few MB of private memory (catalog and plan caches); a busy one adds `work_mem` (4 MB by
default) for each sort or hash its query runs, and up to `temp_buffers` (8 MB by default)
once it touches temporary tables. 10 MB is one idle backend plus one default `work_mem`: a
floor for a busy connection, not a ceiling (a query with several sorts uses several)."""


def memory_cost(extra_connections: int) -> str:
    """The R07 memory caveat: the estimate and what it rests on."""
    return (
        f"Memory: about {extra_connections * BACKEND_MB} MB more at the peak ({extra_connections} more backends x "
        f"~{BACKEND_MB} MB: each connection is a server process with a few MB of its own, plus work_mem "
        "(4 MB by default) for each sort or hash a busy query runs and temp_buffers (8 MB) once it uses "
        "temporary tables; check `SHOW work_mem` and the server's free memory first)."
    )


def _r07_max_connections(t: Topology) -> Proposal | None:
    """Raise the ceiling to the demand: the worst case when it is known, else the worst case
    once the unbounded ASGI groups are bounded at the useful floor (R02/R06)."""
    if t.demand is None:
        return None
    usable, _ = budget.effective_usable(t)
    pairing: tuple[str, ...] = ()
    if t.demand.worst is not None:
        needed = t.demand.worst
    else:
        groups = _asgi_unbounded(t)
        others_unbounded = any(
            g.demand.unbounded
            for g in t.groups
            if g not in groups and g.concurrency_model != "none"
        )
        if not groups or others_unbounded:  # a floor on ASGI would not bound the total
            return None
        needed = _others_worst(t, groups) + sum(_units(g) for g in groups) * USEFUL_FLOOR
        pairing = (
            (
                f"Only together with a bound on ASGI concurrency ({LIMIT_ASGI.code} or {WSGI_THREADS.code}) at the floor of "
                f"{USEFUL_FLOOR} per process: {needed} connections at worst then; on its own the worst case stays unbounded."
            ),
        )
    if needed <= usable:
        return None
    reserved = budget.floor(t.slots.superuser_reserved_connections, 3) + budget.floor(
        t.slots.reserved_connections, 0
    )
    target = needed + reserved + max(5, needed // 10)
    current = budget.floor(t.slots.max_connections, 100)
    where = (
        _loc(t.slots.max_connections.evidence)
        if t.slots.max_connections.evidence
        else "the server's configuration"
    )
    return Proposal(
        (Change(ChangeTarget.SERVER, "max_connections", target),),
        f"{where}: max_connections = {target} (a restart is needed)",
        (
            *pairing,
            memory_cost(target - current),
            f"{target} = {needed} connections at worst + {reserved} reserved + {max(5, needed // 10)} to spare (10 %, at least 5).",
            "A managed server (RDS, Cloud SQL, Azure) caps max_connections by instance size: raise it within the plan, or take a larger instance.",
            "It moves the ceiling but not the behaviour: a burst that grows beyond it fails again.",
        ),
    )


def _r08_reserved(t: Topology) -> Proposal | None:
    version = t.slots.server_version.value
    if (
        version is None
        or version < 16
        or t.slots.role_is_superuser
        or budget.floor(t.slots.reserved_connections, 0) > 0
    ):
        return None
    return Proposal(
        (Change(ChangeTarget.SERVER, "reserved_connections", 3),),
        "reserved_connections = 3 and GRANT pg_use_reserved_connections TO your monitoring/admin role",
        (
            "Operators and monitoring can still connect during an exhaustion, without being superusers.",
            "The application role loses those 3 slots.",
        ),
    )


def _r09_health_checks(t: Topology) -> Proposal | None:
    groups = [g for g in t.groups if g.reuses_unchecked_connections]
    if not groups:
        return None
    django = lower_bound(t.versions, "django")
    if django is not None and django < (4, 1):
        return None
    settings = _settings_file(t)
    return Proposal(
        (),
        f'{settings}: DATABASES["default"]["CONN_HEALTH_CHECKS"] = True',
        (
            "Reused persistent connections are checked before use, so a server restart or failover costs no failed request.",
            "No change in the number of connections.",
        ),
    )


def _r10_celery_concurrency(t: Topology) -> Proposal | None:
    groups = [
        g
        for g in t.groups
        if g.kind == "worker"
        and any(
            q.unknown and q.unknown.endswith(".cpus") and q.value is None
            for q in (g.processes, g.per_process)
        )
    ]
    if not groups:
        return None
    texts = [
        f"{_loc(g.evidence)}: add `--concurrency N` (or CELERY_WORKER_CONCURRENCY=N) to {g.name}"
        for g in groups
    ]
    return Proposal(
        (),
        "; ".join(texts),
        (
            "Without it, Celery starts one child per CPU of the host, not of the container: a 64-CPU node opens 64 connections.",
        ),
    )


def _r11_server_side_cursors(t: Topology) -> Proposal | None:
    groups = [
        g
        for g in t.groups
        if g.policy.via_pgbouncer
        and (g.policy.pgbouncer_pool_mode or "") == "transaction"
        and not g.policy.disable_server_side_cursors
        and g.concurrency_model != "none"
    ]
    if not groups:
        return None
    settings = _settings_file(t)
    return Proposal(
        tuple(Change(g.name, "policy.disable_server_side_cursors", True) for g in groups),
        f'{settings}: DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True',
        (
            "Required by Django with transaction pooling: a server-side cursor would outlive the transaction.",
        ),
    )


def _r12_pool_persistent(t: Topology) -> Proposal | None:
    groups = [g for g in t.groups if g.policy.pool_max is not None and g.policy.conn_max_age != 0]
    if not groups:
        return None
    return Proposal(
        tuple(Change(g.name, "policy.conn_max_age", 0) for g in groups),
        _cma_change(groups, 0),
        (
            "Django refuses to start with a pool and CONN_MAX_AGE != 0 ('Pooling doesn't support persistent connections').",
        ),
    )


def _r13_role(t: Topology) -> Proposal | None:
    if not t.slots.role_is_superuser:
        return None
    return Proposal(
        (Change(ChangeTarget.SERVER, "role_is_superuser", False),),
        f"create a non-superuser role for the application (CREATE ROLE app LOGIN; GRANT ...) instead of {t.slots.role}",
        (
            "The superuser-reserved slots then stay free for an operator during an exhaustion.",
            "The application loses those reserved slots.",
        ),
    )


CONN_MAX_AGE_ZERO = define_remedy(
    "R01",
    "Disable persistent connections under ASGI (CONN_MAX_AGE=0)",
    effort=1,
    risk=1,
    summary="Under ASGI a persistent connection is kept by a thread that is then thrown away: connections leak until GC.",
    propose=_r01_conn_max_age_zero,
)
LIMIT_ASGI = define_remedy(
    "R02",
    "Bound ASGI concurrency (uvicorn limit_concurrency)",
    effort=2,
    risk=2,
    summary="Cap in-flight requests per process so the connections per process are bounded.",
    propose=_r02_limit_asgi,
)
DJANGO_POOL = define_remedy(
    "R03",
    "Django's connection pool, sized to the budget",
    effort=2,
    risk=2,
    summary="One pool per process with a hard max_size caps every process's connections (Django >= 5.1, psycopg 3).",
    propose=_r03_pool,
    provides=Mechanism.DJANGO_POOL,
)
PGBOUNCER_TRANSACTION = define_remedy(
    "R04",
    "pgbouncer in transaction pooling mode",
    effort=4,
    risk=3,
    summary="The server then sees only pgbouncer's pools, whatever the number of client connections.",
    propose=_r04_pgbouncer,
    provides=Mechanism.PGBOUNCER_TRANSACTION,
)
LOWER_CONCURRENCY = define_remedy(
    "R05",
    "Lower web/Celery concurrency to fit",
    effort=1,
    risk=2,
    summary="Fewer processes or threads: fewer connections at the peak.",
    propose=_r05_lower,
)
WSGI_THREADS = define_remedy(
    "R06",
    "Serve WSGI with a threaded worker (gunicorn gthread) instead of ASGI",
    effort=2,
    risk=3,
    summary="A threaded WSGI worker holds at most one connection per thread: a fixed ceiling.",
    propose=_r06_gthread,
)
RAISE_MAX_CONNECTIONS = define_remedy(
    "R07",
    "Raise max_connections",
    effort=2,
    risk=2,
    summary="More slots on the server, at a memory cost.",
    propose=_r07_max_connections,
)
RESERVED_CONNECTIONS = define_remedy(
    "R08",
    "reserved_connections for operators (PostgreSQL 16+)",
    effort=1,
    risk=2,
    summary="Keep slots for monitoring and admin roles without making them superusers.",
    propose=_r08_reserved,
)
HEALTH_CHECKS = define_remedy(
    "R09",
    "CONN_HEALTH_CHECKS for persistent connections",
    effort=1,
    risk=1,
    summary="Check a reused connection before the request uses it.",
    propose=_r09_health_checks,
)
CELERY_CONCURRENCY = define_remedy(
    "R10",
    "Set Celery's concurrency explicitly",
    effort=1,
    risk=1,
    summary="Do not let the host's CPU count decide how many connections a worker opens.",
    propose=_r10_celery_concurrency,
)
NO_SERVER_SIDE_CURSORS = define_remedy(
    "R11",
    "DISABLE_SERVER_SIDE_CURSORS behind transaction pooling",
    effort=1,
    risk=1,
    summary="Django's requirement for pgbouncer transaction pooling.",
    propose=_r11_server_side_cursors,
)
POOL_WITHOUT_PERSISTENCE = define_remedy(
    "R12",
    "CONN_MAX_AGE=0 with Django's pool",
    effort=1,
    risk=1,
    summary="Django refuses to start with a pool and persistent connections.",
    propose=_r12_pool_persistent,
)
APP_ROLE = define_remedy(
    "R13",
    "A non-superuser role for the application",
    effort=2,
    risk=2,
    summary="A superuser app takes the slots reserved for operators.",
    propose=_r13_role,
)


def propose(topology: Topology) -> list[Remedy]:
    """The remedies that apply, each with its predicted demand, ordered by effort, risk, then effect."""
    _usable, known = budget.effective_usable(topology)
    out: list[Remedy] = []
    for spec in REMEDIES.values():
        proposal = spec.propose(topology)
        if proposal is None:
            continue
        after = apply_changes(topology, proposal.changes)
        predicted = after.demand
        after_usable, _ = budget.effective_usable(after)
        fits = (
            predicted is not None
            and predicted.worst is not None
            and predicted.worst <= after_usable
        )
        basis = f"budget model with the change applied: {predicted.formula if predicted else ''}; usable {after_usable}{'' if known else ' (default max_connections)'}"
        out.append(
            Remedy(
                code=spec.code,
                title=spec.title,
                effort=proposal.effort or spec.effort,
                risk=proposal.risk or spec.risk,
                summary=spec.summary,
                change=proposal.change,
                provides=spec.provides,
                caveats=proposal.caveats,
                predicted=predicted,
                predicted_basis=basis,
                evidence=proposal.evidence,
                changes=proposal.changes,
                fits=fits,
            )
        )
    return sorted(out, key=_order)


def _order(remedy: Remedy) -> tuple[int, int, int, int, str]:
    worst = (
        remedy.predicted.worst if remedy.predicted and remedy.predicted.worst is not None else 10**9
    )
    steady = (
        remedy.predicted.steady
        if remedy.predicted and remedy.predicted.steady is not None
        else 10**9
    )
    return (remedy.effort, remedy.risk, worst, steady, remedy.code)
