"""Findings about a deployment's connection budget (PGS001-099), from a `Topology` alone.

Each check is one concern, declared once with its code, severity and hint; `audit_findings`
runs them all. The messages quote numbers from the budget model and cite `file:line`.
"""

from __future__ import annotations

from collections.abc import Callable

from pgslots.deploy import budget
from pgslots.deploy.model import ProcessGroup, Topology
from pgslots.findings import Finding, Severity, define
from pgslots.remedies import (
    APP_ROLE,
    CELERY_CONCURRENCY,
    CONN_MAX_AGE_ZERO,
    DJANGO_POOL,
    HEALTH_CHECKS,
    LIMIT_ASGI,
    LOWER_CONCURRENCY,
    NO_SERVER_SIDE_CURSORS,
    PGBOUNCER_TRANSACTION,
    POOL_WITHOUT_PERSISTENCE,
    RAISE_MAX_CONNECTIONS,
    WSGI_THREADS,
)
from pgslots.versions import exact_version, lower_bound

AREA = "audit"

OVER_BUDGET = define(
    "PGS001",
    "Connection demand exceeds the usable slots",
    Severity.ERROR,
    "Bring the worst case under the usable slots: see the remedies, cheapest first.",
    area=AREA,
)
ASGI_UNBOUNDED = define(
    "PGS002",
    "ASGI demand is unbounded",
    Severity.ERROR,
    "Under ASGI each in-flight request holds its own connection; bound it (uvicorn limit_concurrency, a pool) - lowering WEB_CONCURRENCY does not.",
    area=AREA,
)
ASGI_LEAK = define(
    "PGS003",
    "Persistent connections under ASGI leak (Django #33497)",
    Severity.ERROR,
    "Set CONN_MAX_AGE=0 for ASGI processes; use a pool (Django >= 5.1) or pgbouncer for reuse.",
    area=AREA,
)
POOL_PERSISTENT = define(
    "PGS004",
    "Django pool with CONN_MAX_AGE != 0: Django refuses to start",
    Severity.ERROR,
    "Set CONN_MAX_AGE = 0 when OPTIONS['pool'] is used.",
    area=AREA,
)
POOL_DEFAULT = define(
    "PGS005",
    "Django pool at its default size (4 per process)",
    Severity.WARNING,
    "Size min_size/max_size explicitly: pool=True opens and keeps 4 connections in every process.",
    area=AREA,
)
DJANGO_50_ASGI = define(
    "PGS006",
    "Django 5.0.0/5.0.1 under ASGI leaks connections (#35059)",
    Severity.ERROR,
    "Upgrade to Django 5.0.2 or later.",
    area=AREA,
)
PGBOUNCER_CURSORS = define(
    "PGS007",
    "Transaction pooling without DISABLE_SERVER_SIDE_CURSORS",
    Severity.ERROR,
    "Set DATABASES[...]['DISABLE_SERVER_SIDE_CURSORS'] = True when pgbouncer runs in transaction mode.",
    area=AREA,
)
PGBOUNCER_OVER = define(
    "PGS008",
    "pgbouncer's pools exceed the usable slots",
    Severity.ERROR,
    "Keep pairs x (default_pool_size + reserve_pool_size) under the usable slots, or set max_db_connections.",
    area=AREA,
)
CELERY_DEFAULT = define(
    "PGS009",
    "Celery concurrency defaults to the host's CPU count",
    Severity.WARNING,
    "Set --concurrency (or worker_concurrency) explicitly: os.cpu_count() sees the host, not the container.",
    area=AREA,
)
SECOND_ALIAS = define(
    "PGS010",
    "A second database alias on the same server",
    Severity.WARNING,
    "Each process can hold one connection per alias: count them in the budget, or point the alias elsewhere.",
    area=AREA,
)
UNMOUNTED_CONF = define(
    "PGS011",
    "A postgresql.conf that nothing mounts",
    Severity.WARNING,
    "Mount it (or pass -c flags); otherwise its max_connections is not in effect.",
    area=AREA,
)
NO_HEALTH_CHECKS = define(
    "PGS012",
    "Persistent connections without CONN_HEALTH_CHECKS",
    Severity.INFO,
    "Set CONN_HEALTH_CHECKS = True (Django >= 4.1) so a dead reused connection is replaced before the request uses it.",
    area=AREA,
)
UNREADABLE = define(
    "PGS013",
    "A file could not be read",
    Severity.WARNING,
    "Fix the file, or check the numbers that depend on it by hand: the audit went on without it.",
    area=AREA,
)
NOT_DJANGO = define(
    "PGS014",
    "No Django settings or no process definitions found",
    Severity.WARNING,
    "Point pgslots audit at the deployment repository (the one with the settings and compose/Kubernetes/Procfile).",
    area=AREA,
)
SUPERUSER_APP = define(
    "PGS015",
    "The application connects as a superuser",
    Severity.WARNING,
    "Use a non-superuser role: a superuser app takes the reserved slots, leaving nothing for an operator.",
    area=AREA,
)
POOL_PSYCOPG2 = define(
    "PGS016",
    "Django pool with psycopg2",
    Severity.ERROR,
    "The pool needs psycopg 3 (psycopg[pool]); Django raises 'Database pooling requires psycopg >= 3'.",
    area=AREA,
)
POOL_OLD_DJANGO = define(
    "PGS017",
    "Django pool option before Django 5.1",
    Severity.ERROR,
    "OPTIONS['pool'] exists from Django 5.1; older versions pass it to the driver, which rejects it.",
    area=AREA,
)
EARLY_SESSION = define(
    "PGS018",
    "The session is read in middleware, before the view",
    Severity.INFO,
    "CSRF_USE_SESSIONS or LoginRequiredMiddleware with database sessions touch the database early: failures are named after middleware.",
    area=AREA,
)
ATOMIC_REQUESTS = define(
    "PGS019",
    "ATOMIC_REQUESTS opens the connection before the view runs",
    Severity.INFO,
    "Connection failures then surface before the view: an APM names them after the last middleware (e.g. CsrfViewMiddleware.process_view).",
    area=AREA,
)
CELERY_HOLDS = define(
    "PGS020",
    "Idle Celery children hold persistent connections (Celery <= 5.5)",
    Severity.INFO,
    "With CONN_MAX_AGE > 0 each child keeps its connection between tasks: count concurrency x nodes as held, or set CONN_MAX_AGE=0 for workers.",
    area=AREA,
)
GEVENT_PERSISTENT = define(
    "PGS021",
    "gevent workers with persistent connections",
    Severity.WARNING,
    "Connections of finished greenlets are reclaimed only by GC: use CONN_MAX_AGE=0 or a pool with gevent.",
    area=AREA,
)
PGBOUNCER_CLIENTS = define(
    "PGS022",
    "pgbouncer's max_client_conn is below the application's demand",
    Severity.WARNING,
    "Raise max_client_conn above the clients' worst case, or clients get 'no more connections allowed (max_client_conn)'.",
    area=AREA,
)
DEPLOY_OVERLAP = define(
    "PGS023",
    "Restarts and rolling deploys overlap old and new processes",
    Severity.INFO,
    "Keep headroom for a second copy of the largest group during a deploy or gunicorn HUP.",
    area=AREA,
)
UNKNOWN_GROUP = define(
    "PGS026",
    "A process group pgslots cannot model: the verdict is unknown",
    Severity.ERROR,
    "Supply its counts with --assume GROUP.processes=N --assume GROUP.per_process=N (connections per process); "
    'until then the worst case is unknown, never "fits".',
    area=AREA,
)
ADDRESS_RETRIES = define(
    "PGS024",
    "psycopg tries every address of the database host",
    Severity.INFO,
    "psycopg >= 3.1.13 connects to each resolved address in turn: during exhaustion each attempt is a refused backend and a logged FATAL.",
    area=AREA,
)


def _where(group: ProcessGroup) -> str:
    located = [e for e in group.evidence if e.line is not None]
    return located[0].location() if located else group.source


def over_budget(t: Topology) -> list[Finding]:
    if t.demand is None or not t.groups:
        return []
    usable, known = budget.effective_usable(t)
    basis = f"{usable} usable slots" + (
        ""
        if known
        else " (with the default max_connections=100; set --assume server.max_connections=N)"
    )
    worst = budget.known_worst(t) if t.demand.unknown else t.demand.worst
    if worst is not None and worst <= usable and (t.demand.steady or 0) <= usable:
        return []
    evidence = [e for g in t.groups for e in g.evidence[:1]]
    worst_text = (
        "unbounded"
        if worst is None
        else str(worst) + (" without the unknown groups" if t.demand.unknown else "")
    )
    message = f"Worst-case demand {worst_text} (steady {t.demand.steady}) against {basis}: {t.demand.formula}."
    remedies = (
        CONN_MAX_AGE_ZERO,
        LIMIT_ASGI,
        DJANGO_POOL,
        PGBOUNCER_TRANSACTION,
        LOWER_CONCURRENCY,
        WSGI_THREADS,
        RAISE_MAX_CONNECTIONS,
    )
    return [OVER_BUDGET.finding(message, evidence=evidence, remedies=remedies)]


def unknown_groups(t: Topology) -> list[Finding]:
    return [
        UNKNOWN_GROUP.finding(
            f"{g.name}: {g.unknown_reason or 'a program pgslots does not model'}. It can hold connections to the server, so the "
            f"budget's worst case is unknown until --assume {g.name}.processes=N and --assume {g.name}.per_process=N.",
            evidence=g.evidence,
        )
        for g in budget.unknown_groups(t)
    ]


def asgi_unbounded(t: Topology) -> list[Finding]:
    out = []
    for g in t.groups:
        if g.concurrency_model == "asgi" and g.demand.unbounded:
            processes = g.processes.value if g.processes.value is not None else "?"
            out.append(
                ASGI_UNBOUNDED.finding(
                    f"{g.name} ({g.server_model}) can open one connection per in-flight request in each of its {processes} processes: "
                    f"nothing caps it. WEB_CONCURRENCY counts processes, not connections.",
                    evidence=g.evidence,
                    remedies=(LIMIT_ASGI, WSGI_THREADS, DJANGO_POOL, PGBOUNCER_TRANSACTION),
                )
            )
    return out


def asgi_leak(t: Topology) -> list[Finding]:
    out = []
    for g in t.groups:
        if (
            g.concurrency_model == "asgi"
            and g.policy.pool_max is None
            and g.policy.conn_max_age != 0
            and g.policy.conn_max_age_known
        ):
            value = (
                "None (unlimited)" if g.policy.conn_max_age is None else str(g.policy.conn_max_age)
            )
            out.append(
                ASGI_LEAK.finding(
                    f"{g.name} runs under ASGI with CONN_MAX_AGE={value}: every request thread keeps its connection, which is never reused "
                    "and closes only at garbage collection; backends grow with each burst.",
                    evidence=g.policy.conn_max_age_evidence + g.evidence[:1],
                    remedies=(CONN_MAX_AGE_ZERO,),
                )
            )
    return out


def pool_checks(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    pooled = [
        g for g in t.groups if g.policy.pool_max is not None and g.concurrency_model != "none"
    ]
    if not pooled:
        return out
    g = pooled[0]
    if any(p.policy.conn_max_age != 0 for p in pooled):
        out.append(
            POOL_PERSISTENT.finding(
                f"OPTIONS['pool'] with CONN_MAX_AGE={g.policy.conn_max_age}: Django raises ImproperlyConfigured at startup.",
                evidence=g.policy.pool_evidence + g.policy.conn_max_age_evidence,
                remedies=(POOL_WITHOUT_PERSISTENCE,),
            )
        )
    if g.policy.pool_min == 4 and g.policy.pool_max == 4:
        processes = sum(
            budget.floor(p.hosts) * budget.floor(p.replicas) * budget.floor(p.processes)
            for p in pooled
        )
        out.append(
            POOL_DEFAULT.finding(
                f"pool=True keeps 4 connections open in every process: {processes} processes x 4 = {processes * 4}.",
                evidence=g.policy.pool_evidence,
                remedies=(DJANGO_POOL,),
            )
        )
    if any(v.package == "psycopg2" for v in t.versions) and not any(
        v.package == "psycopg" for v in t.versions
    ):
        out.append(
            POOL_PSYCOPG2.finding(
                "The pool is configured but the project installs psycopg2.",
                evidence=g.policy.pool_evidence,
            )
        )
    django = lower_bound(t.versions, "django")
    if django is not None and django < (5, 1):
        out.append(
            POOL_OLD_DJANGO.finding(
                f"OPTIONS['pool'] with Django {'.'.join(map(str, django))}.",
                evidence=g.policy.pool_evidence,
            )
        )
    return out


def django_50(t: Topology) -> list[Finding]:
    django = exact_version(t.versions, "django")
    if django is None or django[:2] != (5, 0) or (*django, 0, 0)[2] > 1:
        return []
    groups = [g for g in t.groups if g.concurrency_model == "asgi"]
    if not groups:
        return []
    fact = next(v for v in t.versions if v.package == "django")
    return [
        DJANGO_50_ASGI.finding(
            f"Django {fact.version} under ASGI can leak connections even with CONN_MAX_AGE=0 (request_finished not always sent).",
            evidence=(fact.evidence, *groups[0].evidence[:1]),
        )
    ]


def pgbouncer_checks(t: Topology) -> list[Finding]:
    out: list[Finding] = []
    setup = t.pgbouncer
    pooled = [g for g in t.groups if g.policy.via_pgbouncer and g.concurrency_model != "none"]
    if setup is None or not pooled:
        return out
    if (setup.pool_mode or "") == "transaction" and any(
        not g.policy.disable_server_side_cursors for g in pooled
    ):
        out.append(
            PGBOUNCER_CURSORS.finding(
                f"{setup.service} runs pool_mode=transaction but DISABLE_SERVER_SIDE_CURSORS is not set: iterator() querysets break.",
                evidence=setup.evidence[:2],
                remedies=(NO_SERVER_SIDE_CURSORS,),
            )
        )
    usable, known = budget.effective_usable(t)
    capacity = setup.capacity or budget.pgbouncer_capacity(setup)
    direct = sum(g.demand.worst or 0 for g in t.groups if not g.policy.via_pgbouncer)
    if capacity is not None and not setup.per_host and capacity + direct > usable:
        out.append(
            PGBOUNCER_OVER.finding(
                f"pgbouncer can open {capacity} server connections ({max(1, len(setup.pairs))} pair(s) x (pool {setup.default_pool_size or budget.PGBOUNCER_DEFAULT_POOL_SIZE} + reserve {setup.reserve_pool_size or 0})), "
                f"plus {direct} direct, against {usable} usable slots{'' if known else ' (default max_connections)'}.",
                evidence=setup.evidence[:3],
                remedies=(RAISE_MAX_CONNECTIONS,),
            )
        )
    max_client = setup.max_client_conn or budget.PGBOUNCER_DEFAULT_MAX_CLIENT_CONN
    unbounded = any(g.demand.unbounded for g in pooled)
    clients = sum(g.demand.worst or 0 for g in pooled)
    if unbounded or clients > max_client:
        total = "unbounded" if unbounded else str(clients)
        out.append(
            PGBOUNCER_CLIENTS.finding(
                f"The application can open {total} client connections"
                + (" per host" if setup.per_host else "")
                + f"; max_client_conn is {max_client}"
                + (
                    " (the default: the repository does not set it)."
                    if setup.max_client_conn is None
                    else "."
                ),
                evidence=setup.evidence[:2],
            )
        )
    return out


def celery_default(t: Topology) -> list[Finding]:
    return [
        CELERY_DEFAULT.finding(
            f"{g.name} has no --concurrency and no worker_concurrency: it starts os.cpu_count() children of the host it lands on "
            f"(set --assume {g.name}.cpus=N to budget it).",
            evidence=g.evidence[:1],
            remedies=(CELERY_CONCURRENCY,),
        )
        for g in t.groups
        if g.kind == "worker"
        and any(
            q.value is None and (q.unknown or "").endswith(".cpus")
            for q in (g.processes, g.per_process)
        )
    ]


def second_alias(t: Topology) -> list[Finding]:
    if t.django is None:
        return []
    extra = [a for a in t.django.aliases if a.name != "default" and a.same_server is True]
    return [
        SECOND_ALIAS.finding(
            f"Alias {a.name!r} points at the same server as 'default' (host {a.host or 'same'}): each process may hold one connection for each.",
            evidence=a.evidence[:1],
        )
        for a in extra
    ]


def unmounted(t: Topology) -> list[Finding]:
    return [
        UNMOUNTED_CONF.finding(
            f"{e.path} is in the repository but no service mounts it or passes it as config_file.",
            evidence=(e,),
        )
        for e in t.unused_configs
    ]


def health_checks(t: Topology) -> list[Finding]:
    groups = [g for g in t.groups if g.reuses_unchecked_connections]
    if not groups:
        return []
    names = ", ".join(g.name for g in groups)
    return [
        NO_HEALTH_CHECKS.finding(
            f"{names} keep connections between requests/tasks (CONN_MAX_AGE={groups[0].policy.conn_max_age}) without CONN_HEALTH_CHECKS.",
            evidence=groups[0].policy.conn_max_age_evidence[:1],
            remedies=(HEALTH_CHECKS,),
        )
    ]


def unreadable(t: Topology) -> list[Finding]:
    return [UNREADABLE.finding(e.text, evidence=(e,)) for e in t.read_errors]


def not_django(t: Topology) -> list[Finding]:
    out = []
    if t.settings_module is None:
        out.append(
            NOT_DJANGO.finding(
                "No Django settings module was found (no DJANGO_SETTINGS_MODULE, no settings.py with DATABASES): "
                "this does not look like a Django project."
            )
        )
    if not t.groups and not t.units:
        out.append(
            NOT_DJANGO.finding(
                "No process definitions were found (no compose file, Kubernetes workload, Procfile, supervisord or systemd unit, Dockerfile CMD)."
            )
        )
    elif not t.groups:
        # Deployment files exist: say what they are and why none of their processes counted.
        listed = "; ".join(
            f"{', '.join(u.paths)} ({'kept' if u.kept else 'dropped'}: {u.why})"
            for u in t.units[:4]
        )
        out.append(
            NOT_DJANGO.finding(
                f"None of the deployment units starts a process of the project that holds connections: {listed}. "
                "See the notes for each service left out."
            )
        )
    return out


def superuser_app(t: Topology) -> list[Finding]:
    if not t.slots.role_is_superuser:
        return []
    return [
        SUPERUSER_APP.finding(
            f"The application connects as {t.slots.role}, the image's POSTGRES_USER, a superuser: it can take every slot, "
            "and it will see 'sorry, too many clients already' rather than the reserved-slot message.",
            evidence=t.slots.role_evidence,
            remedies=(APP_ROLE,),
        )
    ]


def early_session(t: Topology) -> list[Finding]:
    facts = t.django
    if facts is None:
        return []
    db_sessions = facts.session_engine in (
        None,
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    )
    if db_sessions and (facts.csrf_use_sessions or facts.login_required_middleware):
        what = "CSRF_USE_SESSIONS=True" if facts.csrf_use_sessions else "LoginRequiredMiddleware"
        return [
            EARLY_SESSION.finding(
                f"{what} with database sessions: the session is loaded in middleware, so the first query runs before the view.",
                evidence=facts.evidence[:1],
            )
        ]
    return []


def atomic_requests(t: Topology) -> list[Finding]:
    web = [g for g in t.groups if g.kind == "web" and g.policy.atomic_requests]
    if not web:
        return []
    return [
        ATOMIC_REQUESTS.finding(
            "ATOMIC_REQUESTS=True: each view is wrapped in a transaction opened before the view body runs; "
            "a connection failure then happens while the APM still names the request after the last middleware.",
            evidence=web[0].evidence[:1],
        )
    ]


def celery_holds(t: Topology) -> list[Finding]:
    celery = exact_version(t.versions, "celery")
    if celery is not None and celery >= (5, 6):
        return []
    return [
        CELERY_HOLDS.finding(
            f"{g.name}: {g.demand.steady} connections stay open while idle (CONN_MAX_AGE={g.policy.conn_max_age}, "
            f"Celery {'.'.join(map(str, celery)) if celery else '(version unknown)'}).",
            evidence=g.evidence[:2],
        )
        for g in t.groups
        if g.kind == "worker"
        and g.concurrency_model in ("prefork", "celery-threads", "celery-green", "solo")
        and budget.persistent(g)
        and g.policy.pool_max is None
        and g.policy.conn_max_age_known
        and (g.demand.steady or 0) > 0
    ]


def gevent_persistent(t: Topology) -> list[Finding]:
    return [
        GEVENT_PERSISTENT.finding(
            f"{g.name} ({g.server_model}) with CONN_MAX_AGE={g.policy.conn_max_age}.",
            evidence=g.evidence[:1],
            remedies=(DJANGO_POOL,),
        )
        for g in t.groups
        if g.concurrency_model in ("greenlets", "celery-green")
        and budget.persistent(g)
        and g.policy.pool_max is None
    ]


def deploy_overlap(t: Topology) -> list[Finding]:
    if t.demand is None or t.demand.worst is None:
        return []
    usable, _ = budget.effective_usable(t)
    largest = max(
        (g for g in t.groups if g.demand.worst and not g.policy.via_pgbouncer),
        key=lambda g: g.demand.worst or 0,
        default=None,
    )
    if (
        largest is None
        or t.demand.worst > usable
        or t.demand.worst + (largest.demand.worst or 0) <= usable
    ):
        return []
    return [
        DEPLOY_OVERLAP.finding(
            f"During a deploy or HUP, {largest.name} can briefly run twice: {t.demand.worst} + {largest.demand.worst} "
            f"= {t.demand.worst + (largest.demand.worst or 0)} > {usable} usable.",
            evidence=largest.evidence[:1],
        )
    ]


def address_retries(t: Topology) -> list[Finding]:
    psycopg = exact_version(t.versions, "psycopg")
    if psycopg is None or psycopg < (3, 1, 13):
        return []
    fact = next(v for v in t.versions if v.package == "psycopg")
    return [
        ADDRESS_RETRIES.finding(
            f"psycopg {fact.version}: each connect() tries every address the DB host resolves to; "
            "a refused attempt is repeated per address, and from 3.2.8 the messages are combined.",
            evidence=(fact.evidence,),
        )
    ]


CHECKS: tuple[Callable[[Topology], list[Finding]], ...] = (
    not_django,
    unreadable,
    over_budget,
    unknown_groups,
    asgi_unbounded,
    asgi_leak,
    django_50,
    pool_checks,
    pgbouncer_checks,
    celery_default,
    second_alias,
    unmounted,
    superuser_app,
    health_checks,
    early_session,
    atomic_requests,
    celery_holds,
    gevent_persistent,
    deploy_overlap,
    address_retries,
)


def audit_findings(topology: Topology) -> list[Finding]:
    findings = [finding for check in CHECKS for finding in check(topology)]
    return sorted(findings, key=lambda f: (-f.severity.rank, f.code))
