"""Findings from a running Django project's settings (the `pgslots.django` system checks).

The same concerns as the static audit, with the same codes and hints (`rules.audit`), read
from the settings Django actually uses instead of the repository's files: the messages name
the alias and the value, and cite the settings module with a "runtime" resolution. Only
one code is new here: an alias on another database engine, which is skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from pgslots.deploy.budget import usable_slots
from pgslots.deploy.model import Quantity, SlotBudget
from pgslots.django.facts import AliasSettings, ProjectSettings
from pgslots.findings import Finding, Severity, define
from pgslots.remedies import (
    CELERY_CONCURRENCY,
    CONN_MAX_AGE_ZERO,
    DJANGO_POOL,
    HEALTH_CHECKS,
    NO_SERVER_SIDE_CURSORS,
    POOL_WITHOUT_PERSISTENCE,
)
from pgslots.rules import audit

NOT_POSTGRESQL = define(
    "PGS025",
    "A database alias is not PostgreSQL: pgslots skips it",
    Severity.INFO,
    "Nothing to do: pgslots checks PostgreSQL connection slots only.",
    area="audit",
)

CELERY_HOLDS_FIXED = (
    5,
    6,
)  # Celery 5.6 closes idle children's connections (rules.audit.celery_holds)


def _postgresql(p: ProjectSettings) -> tuple[AliasSettings, ...]:
    return p.postgresql_aliases


def not_postgresql(p: ProjectSettings) -> list[Finding]:
    return [
        NOT_POSTGRESQL.finding(
            f"Alias {a.alias!r} uses {a.engine or 'no ENGINE'} ({a.vendor}): its connections are not checked.",
            evidence=(a.evidence(p.settings_module, "ENGINE", a.engine),),
        )
        for a in p.aliases
        if a.vendor not in ("postgresql", "dummy")
    ]  # dummy: DATABASES = {}, no database at all


def _age(value: int | None) -> str:
    return "None (unlimited)" if value is None else str(value)


def asgi_leak(p: ProjectSettings) -> list[Finding]:
    if p.asgi is None:
        return []
    return [
        audit.ASGI_LEAK.finding(
            f"Alias {a.alias!r} has CONN_MAX_AGE={_age(a.conn_max_age)} and the project runs under ASGI ({p.asgi}): each request "
            "thread keeps its own connection, never reused, closed only at garbage collection; backends grow with each burst.",
            evidence=(
                a.evidence(p.settings_module, "CONN_MAX_AGE", a.conn_max_age),
                p.evidence(p.asgi),
            ),
            remedies=(CONN_MAX_AGE_ZERO,),
        )
        for a in _postgresql(p)
        if a.persistent and a.pool is None
    ]


def django_50(p: ProjectSettings) -> list[Finding]:
    version = (*p.django_version, 0, 0, 0)
    if p.asgi is None or version[:2] != (5, 0) or version[2] > 1 or not _postgresql(p):
        return []
    return [
        audit.DJANGO_50_ASGI.finding(
            f"Django {p.django_version_text} under ASGI ({p.asgi}) can leak connections even with CONN_MAX_AGE=0 (request_finished not always sent).",
            evidence=(p.evidence(f"django {p.django_version_text}"),),
        )
    ]


def pool_checks(p: ProjectSettings) -> list[Finding]:
    out = []
    for a in _postgresql(p):
        if a.pool is None:
            continue
        pool_ev = a.evidence(p.settings_module, "OPTIONS", {"pool": "..."})
        if p.django_version[:2] < (5, 1):
            out.append(
                audit.POOL_OLD_DJANGO.finding(
                    f"Alias {a.alias!r} sets OPTIONS['pool'] with Django {p.django_version_text}: the pool exists from Django 5.1; "
                    f"Django {p.django_version_text} passes 'pool' to the driver, which rejects it at the first connection.",
                    evidence=(pool_ev, p.evidence(f"django {p.django_version_text}")),
                )
            )
        if p.psycopg_version is None:
            driver = f"psycopg2 {p.psycopg2_version}" if p.psycopg2_version else "no psycopg"
            out.append(
                audit.POOL_PSYCOPG2.finding(
                    f"Alias {a.alias!r} sets OPTIONS['pool'] but the project has {driver}, not psycopg 3.",
                    evidence=(pool_ev,),
                )
            )
        elif p.psycopg_pool_version is None and p.django_version[:2] >= (5, 1):
            out.append(
                audit.POOL_PSYCOPG2.finding(
                    f"Alias {a.alias!r} sets OPTIONS['pool'] but psycopg_pool is not installed: Django raises "
                    "'Error loading psycopg_pool module. Did you install psycopg[pool]?' at the first connection.",
                    evidence=(
                        pool_ev,
                        p.evidence(
                            f"psycopg {p.psycopg_version} installed, psycopg-pool not installed"
                        ),
                    ),
                )
            )
        if a.persistent:
            out.append(
                audit.POOL_PERSISTENT.finding(
                    f"Alias {a.alias!r} sets OPTIONS['pool'] with CONN_MAX_AGE={_age(a.conn_max_age)}: Django raises ImproperlyConfigured "
                    "at the first connection.",
                    evidence=(
                        pool_ev,
                        a.evidence(p.settings_module, "CONN_MAX_AGE", a.conn_max_age),
                    ),
                    remedies=(POOL_WITHOUT_PERSISTENCE,),
                )
            )
        if a.pool_is_default:
            out.append(
                audit.POOL_DEFAULT.finding(
                    f"Alias {a.alias!r}: pool=True opens and keeps 4 connections in every process.",
                    evidence=(pool_ev,),
                    remedies=(DJANGO_POOL,),
                )
            )
    return out


def pool_budget(p: ProjectSettings) -> list[Finding]:
    """The pools' sizes against PGSLOTS' max_connections (and processes, when given)."""
    if p.budget.max_connections is None:
        return []
    direct = [a for a in _postgresql(p) if a.pool is not None and a.host_kind == "postgres"]
    if not direct:
        return []
    usable, formula, _ = usable_slots(
        SlotBudget(
            max_connections=Quantity(p.budget.max_connections),
            superuser_reserved_connections=Quantity(p.budget.superuser_reserved_connections),
            reserved_connections=Quantity(p.budget.reserved_connections),
            other_clients=Quantity(p.budget.other_clients or 0),
        )
    )
    assert usable is not None
    by_server: dict[tuple[str, str], list[AliasSettings]] = defaultdict(list)
    for a in direct:
        by_server[a.server].append(a)
    out = []
    processes = p.budget.processes
    for (host, port), aliases in by_server.items():
        sizes = [a.pool[1] for a in aliases if a.pool is not None]
        if any(size is None for size in sizes):
            continue
        per_process = sum(size for size in sizes if size is not None)
        demand = per_process * (processes or 1)
        if demand <= usable:
            continue
        shape = " + ".join(f"{a.alias} max_size {a.pool[1] if a.pool else '?'}" for a in aliases)
        scale = f"{processes} processes x ({shape})" if processes else f"one process: {shape}"
        out.append(
            audit.OVER_BUDGET.finding(
                f"The pools on {host}:{port} can open {demand} connections ({scale}) against {usable} usable slots ({formula}).",
                evidence=(
                    aliases[0].evidence(
                        p.settings_module,
                        "OPTIONS",
                        {"pool": {"max_size": aliases[0].pool[1] if aliases[0].pool else None}},
                    ),
                    p.evidence(
                        f"PGSLOTS = {{'max_connections': {p.budget.max_connections}"
                        + (f", 'processes': {processes}" if processes else "")
                        + ", ...}"
                    ),
                ),
                remedies=(DJANGO_POOL,),
            )
        )
    return out


def health_checks(p: ProjectSettings) -> list[Finding]:
    if p.asgi is not None:
        return []  # under ASGI a persistent connection is the leak (asgi_leak), not a stale-connection risk
    return [
        audit.NO_HEALTH_CHECKS.finding(
            f"Alias {a.alias!r} keeps connections between requests (CONN_MAX_AGE={_age(a.conn_max_age)}) without CONN_HEALTH_CHECKS.",
            evidence=(a.evidence(p.settings_module, "CONN_HEALTH_CHECKS", a.health_checks),),
            remedies=(HEALTH_CHECKS,),
        )
        for a in _postgresql(p)
        if a.persistent and a.pool is None and not a.health_checks
    ]


def atomic_requests(p: ProjectSettings) -> list[Finding]:
    return [
        audit.ATOMIC_REQUESTS.finding(
            f"Alias {a.alias!r} has ATOMIC_REQUESTS=True: each view runs in a transaction opened before the view body; a connection "
            "failure then happens while the APM still names the request after the last middleware.",
            evidence=(a.evidence(p.settings_module, "ATOMIC_REQUESTS", True),),
        )
        for a in _postgresql(p)
        if a.atomic_requests
    ]


def pgbouncer_cursors(p: ProjectSettings) -> list[Finding]:
    return [
        audit.PGBOUNCER_CURSORS.finding(
            f"Alias {a.alias!r} connects to {a.host}:{a.server[1]}, which looks like pgbouncer ({a.host_kind_why}), without "
            "DISABLE_SERVER_SIDE_CURSORS: in transaction pooling, iterator() querysets break. If it is not pgbouncer, or runs "
            f"pool_mode=session, say so: PGSLOTS = {{'hosts': {{{a.host!r}: 'postgres'}}}}.",
            evidence=(
                a.evidence(p.settings_module, "HOST", a.host),
                a.evidence(p.settings_module, "DISABLE_SERVER_SIDE_CURSORS", False),
            ),
            remedies=(NO_SERVER_SIDE_CURSORS,),
        )
        for a in _postgresql(p)
        if a.host_kind == "pgbouncer" and not a.disable_server_side_cursors
    ]


def second_alias(p: ProjectSettings) -> list[Finding]:
    aliases = [a for a in _postgresql(p) if a.host_kind == "postgres"]
    first_on: dict[tuple[str, str], AliasSettings] = {}
    out = []
    for a in aliases:
        other = first_on.setdefault(a.server, a)
        if other is a:
            continue
        out.append(
            audit.SECOND_ALIAS.finding(
                f"Alias {a.alias!r} points at the same server as {other.alias!r} ({a.server[0]}:{a.server[1]}): each process may hold "
                "one connection for each.",
                evidence=(a.evidence(p.settings_module, "HOST", a.host),),
            )
        )
    return out


def celery_checks(p: ProjectSettings) -> list[Finding]:
    celery = p.celery
    aliases = _postgresql(p)
    if celery is None or not aliases:
        return []
    out = []
    pool = celery.pool or "prefork"
    where = f"Celery app {celery.app!r}" if celery.app != "settings" else "The CELERY_* settings"
    if celery.concurrency is None and pool not in ("solo",):
        out.append(
            audit.CELERY_DEFAULT.finding(
                f"{where} sets no worker_concurrency: unless every worker command passes --concurrency, each starts os.cpu_count() "
                "children of the host it lands on.",
                evidence=(p.evidence("worker_concurrency not set"),),
                remedies=(CELERY_CONCURRENCY,),
            )
        )
    persistent = [a for a in aliases if a.persistent and a.pool is None]
    if pool in ("gevent", "eventlet") and persistent:
        out.append(
            audit.GEVENT_PERSISTENT.finding(
                f"{where} uses worker_pool={pool!r} with CONN_MAX_AGE={_age(persistent[0].conn_max_age)} on alias {persistent[0].alias!r}.",
                evidence=(p.evidence(f"worker_pool = {pool!r}"),),
                remedies=(DJANGO_POOL,),
            )
        )
    fixed = celery.version is not None and celery.version >= CELERY_HOLDS_FIXED
    if pool in ("prefork", "threads", "solo") and persistent and not fixed:
        version = ".".join(map(str, celery.version)) if celery.version else "(version unknown)"
        count = f"{celery.concurrency} children" if celery.concurrency else "each child"
        out.append(
            audit.CELERY_HOLDS.finding(
                f"{where}: {count} keep their connection open while idle (CONN_MAX_AGE={_age(persistent[0].conn_max_age)}, Celery {version}).",
                evidence=(p.evidence(f"worker_pool = {pool!r}"),),
            )
        )
    return out


CHECKS: tuple[Callable[[ProjectSettings], list[Finding]], ...] = (
    not_postgresql,
    asgi_leak,
    django_50,
    pool_checks,
    pool_budget,
    pgbouncer_cursors,
    second_alias,
    celery_checks,
    health_checks,
    atomic_requests,
)


def runtime_findings(project: ProjectSettings) -> list[Finding]:
    """Every finding the running project's settings show, most severe first."""
    findings = [finding for check in CHECKS for finding in check(project)]
    return sorted(findings, key=lambda f: (-f.severity.rank, f.code))
