"""What the deployment already does, so the report does not propose it again, and says what
it does here instead.

The write-up's first direction was "set CONN_MAX_AGE=60"; the settings already said 60.
Under ASGI with Django >= 4.0 that setting is not a remedy but a leak: every in-flight
request gets its own thread and its own connection, which then stays open until the garbage
collector runs (domain reference §3.3, Django ticket #33497).
"""

from __future__ import annotations

from pgslots import versions
from pgslots.deploy.model import ProcessGroup, Topology
from pgslots.diagnosis import AlreadyInPlace
from pgslots.remedy import Mechanism, Remedy, changes_hold


def is_asgi(group: ProcessGroup) -> bool:
    if group.concurrency_model == "asgi":
        return True
    model = group.server_model.lower()
    return "asgi" in model or "uvicorn" in model or "daphne" in model or "hypercorn" in model


def _persistent_consequence(group: ProcessGroup, topology: Topology) -> str:
    django = versions.find(topology.versions, "django")
    django_v = versions.lower_bound(topology.versions, "django")
    if group.kind == "web" and is_asgi(group):
        if django_v is not None and django_v < (4, 0):
            return "under ASGI with Django 3.2 all sync code shares one thread per process, so this reuses one connection per process"
        where = (
            f"Django {versions.written(django)}"
            if django
            else "Django >= 4.0 (the version is not pinned in the repository)"
        )
        return (
            f"it leaks under ASGI: with {where} every in-flight request runs on its own thread with its own "
            "connection, which stays open after the request until garbage collection; demand grows with every "
            "burst and is unbounded (Django ticket #33497: disable persistent connections under ASGI, use a pool)"
        )
    if group.concurrency_model == "beat-db" or group.kind == "beat":
        return "beat keeps its one connection open between schedule checks"
    if group.kind == "worker":
        celery = versions.find(topology.versions, "celery")
        celery_v = versions.lower_bound(topology.versions, "celery")
        if celery and celery_v and celery_v >= (5, 6):
            return f"Celery {versions.written(celery)} closes the connection before and after every task anyway, so it has no effect on the workers"
        return "each worker process keeps its connection open between tasks: steady demand equals the worker count"
    return "each worker thread reuses one connection: fewer connects, the same number of connections held"


def detect(topology: Topology | None) -> tuple[AlreadyInPlace, ...]:
    if topology is None:
        return ()
    found: list[AlreadyInPlace] = []
    persistent = [
        g
        for g in topology.groups
        if g.policy.pool_max is None
        and g.policy.conn_max_age != 0
        and g.policy.conn_max_age_known
        and g.concurrency_model != "none"
    ]
    by_setting: dict[tuple[str, tuple], list[ProcessGroup]] = {}
    for group in persistent:
        value = "None" if group.policy.conn_max_age is None else str(group.policy.conn_max_age)
        by_setting.setdefault(
            (f"CONN_MAX_AGE={value}", group.policy.conn_max_age_evidence), []
        ).append(group)
    for (setting, evidence), groups in by_setting.items():
        consequences = [
            f"{g.name} ({g.kind}): {_persistent_consequence(g, topology)}" for g in groups
        ]
        leaks = [g.name for g in groups if g.kind == "web" and is_asgi(g)]
        found.append(
            AlreadyInPlace(
                title="Persistent connections",
                setting=setting,
                evidence=evidence,
                consequence="; ".join(consequences)
                if len(groups) > 1
                else _persistent_consequence(groups[0], topology),
                mechanism=Mechanism.PERSISTENT_CONNECTIONS,
                summary=(
                    f"it leaks under ASGI in {', '.join(leaks)} (Django #33497)"
                    if leaks
                    else "connections are already kept between requests"
                ),
            )
        )
    pooled: dict[str, list[ProcessGroup]] = {}
    for group in topology.groups:
        if group.policy.pool_max is not None:
            pooled.setdefault(
                f"OPTIONS pool min {group.policy.pool_min} max {group.policy.pool_max}", []
            ).append(group)
    for setting, groups in pooled.items():
        policy = groups[0].policy
        found.append(
            AlreadyInPlace(
                title=f"Django connection pool ({', '.join(g.name for g in groups)})",
                setting=setting,
                evidence=policy.pool_evidence or policy.conn_max_age_evidence,
                consequence="caps each process at the pool's max_size; size it so that max_size x processes fits",
                mechanism=Mechanism.DJANGO_POOL,
                summary="each process is capped at the pool's max_size",
            )
        )
    if topology.pgbouncer is not None or any(g.policy.via_pgbouncer for g in topology.groups):
        mode = topology.pgbouncer.pool_mode if topology.pgbouncer else None
        found.append(
            AlreadyInPlace(
                title="pgbouncer",
                setting=f"pgbouncer pool_mode={mode or '?'}",
                evidence=topology.pgbouncer.evidence if topology.pgbouncer else (),
                consequence="the server sees pgbouncer's pools, not the application's connections"
                + (
                    ""
                    if mode == "transaction"
                    else "; in session mode it does not reduce server connections"
                ),
                mechanism=Mechanism.PGBOUNCER_TRANSACTION
                if mode == "transaction"
                else Mechanism.PGBOUNCER,
                summary=f"the server sees pgbouncer's pools ({mode or 'mode unknown'})",
            )
        )
    return tuple(found)


def already_in_place(
    remedy: Remedy, in_place: tuple[AlreadyInPlace, ...], topology: Topology | None = None
) -> AlreadyInPlace | None:
    """The in-place item that makes this remedy moot: its model edits already hold, or the
    deployment already runs what it provides (a session-mode pgbouncer does not make
    transaction pooling moot: moving to it is a new change)."""
    if changes_hold(remedy, topology):
        setting = ", ".join(f"{c.target_name} {c.field}={c.value}" for c in remedy.changes)
        return AlreadyInPlace(
            title=remedy.title,
            setting=setting,
            evidence=remedy.evidence,
            consequence="the deployment already has it",
            mechanism=remedy.provides,
        )
    if remedy.provides is None:
        return None
    return next((item for item in in_place if item.mechanism is remedy.provides), None)
