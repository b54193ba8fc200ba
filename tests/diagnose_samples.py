"""The write-up's incident and deployment, built from the core types, for the tests of the
join and the renderers (the end-to-end tests build the same from real inputs instead).

Numbers are the write-up's: 440 events in 5-minute buckets 4 / 152 / 284; 402 reserved,
22 too many clients, 15 both (and one event with another message, since 402 + 22 + 15 is
439); 435 at CsrfViewMiddleware.process_view, 4 Celery, 1 SourceImageViewSet.list.
The deployment: gunicorn + UvicornWorker (ASGI), WEB_CONCURRENCY=4, CONN_MAX_AGE=60,
Celery prefork 16, Django 4.2, psycopg 3.1.9, PostgreSQL defaults (100 - 3 = 97).
"""

from __future__ import annotations

import datetime as dt

from pgslots.deploy.model import (
    ConnectionPolicy,
    Demand,
    ProcessGroup,
    Quantity,
    SlotBudget,
    Topology,
    Unknown,
    VersionFact,
)
from pgslots.diagnose.context import Gathered
from pgslots.diagnosis import InputStatus
from pgslots.events.model import BucketCount, FacetRow, Incident, InputSummary, Shape
from pgslots.evidence import Evidence, Resolution
from pgslots.remedy import Mechanism, Remedy

UTC = dt.timezone.utc
CSRF = "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view"
CELERY = "OtherTransaction/Celery/ami.jobs.tasks.update_async_services_seen_for_pipelines"
VIEW = "WebTransaction/Function/ami.main.api.views:SourceImageViewSet.list"


def at(h: int, m: int) -> dt.datetime:
    return dt.datetime(2026, 5, 11, h, m, tzinfo=UTC)


def incident() -> Incident:
    return Incident(
        window_start=at(22, 22),
        window_end=at(22, 37),
        bucket_seconds=300,
        total=440,
        buckets=(
            BucketCount(at(22, 22), 4, {"reserved_superuser": 4}),
            BucketCount(at(22, 27), 152, {"reserved_superuser": 144, "too_many_clients": 12}),
            BucketCount(
                at(22, 32), 284, {"reserved_superuser": 269, "too_many_clients": 25, "other": 1}
            ),
        ),
        by_category={"reserved_superuser": 417, "too_many_clients": 37, "other": 1},
        by_combination={
            "reserved_superuser": 402,
            "too_many_clients": 22,
            "reserved_superuser+too_many_clients": 15,
            "other": 1,
        },
        facets={
            "transaction": (
                FacetRow(CSRF, 435, 435 / 440),
                FacetRow(CELERY, 4, 4 / 440),
                FacetRow(VIEW, 1, 1 / 440),
            ),
            "error_class": (FacetRow("django.db.utils:OperationalError", 440, 1.0),),
        },
        shape=Shape(
            "sustained_growth", "each bucket higher than the one before, no drop", (4, 152, 284)
        ),
        notes=(),
        samples={},
        inputs=(InputSummary("newrelic-incident.json", "newrelic-nerdgraph", 440, 440),),
    )


def ev(path: str, line: int | None, text: str, how: Resolution = Resolution.LITERAL) -> Evidence:
    return Evidence(path, line, text, how)


def topology(hosts: int | None = None) -> Topology:
    cma = (
        ev(
            "config/settings/production.py",
            23,
            'DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)',
            Resolution.ENV_DEFAULT,
        ),
    )
    policy = ConnectionPolicy(conn_max_age=60, conn_max_age_evidence=cma)
    web_processes = Quantity(
        4, (ev(".envs/.production/.django", 130, "WEB_CONCURRENCY=4", Resolution.ENV_FILE),)
    )
    web_hosts = Quantity(
        hosts,
        (ev("--assume", None, f"web.hosts={hosts}", Resolution.ASSUMPTION),) if hosts else (),
        unknown="web.hosts",
    )
    floor = hosts or 1
    web = ProcessGroup(
        name="django",
        kind="web",
        server_model="asgi (gunicorn + uvicorn worker)",
        hosts=web_hosts,
        processes=web_processes,
        per_process=Quantity(None),
        aliases=("default",),
        policy=policy,
        demand=Demand(
            4 * floor,
            None,
            f"{floor} hosts x 4 workers x unbounded in-flight requests (ASGI, no limit)",
        ),
        evidence=(
            ev(
                "compose/production/django/start",
                9,
                "exec gunicorn config.asgi --bind 0.0.0.0:5000 -k uvicorn_worker.UvicornWorker",
                Resolution.COMMAND_FLAG,
            ),
        ),
        command="gunicorn config.asgi -k uvicorn_worker.UvicornWorker",
    )
    worker = ProcessGroup(
        name="celeryworker",
        kind="worker",
        server_model="celery prefork",
        hosts=Quantity(1),
        processes=Quantity(
            16,
            (
                ev(
                    ".envs/.production/.django",
                    28,
                    "CELERY_WORKER_CONCURRENCY=16",
                    Resolution.ENV_FILE,
                ),
            ),
        ),
        per_process=Quantity(1),
        aliases=("default",),
        policy=policy,
        demand=Demand(16, 16, "1 node x 16 prefork children x 1"),
        evidence=(
            ev(
                "compose/production/django/celery/worker/start",
                7,
                "exec celery -A config.celery_app worker -l INFO",
                Resolution.COMMAND_FLAG,
            ),
        ),
    )
    default = Resolution.LIBRARY_DEFAULT
    return Topology(
        root="repo",
        groups=(web, worker),
        slots=SlotBudget(
            max_connections=Quantity(
                100, (ev("postgresql.conf.sample", None, "max_connections = 100", default),)
            ),
            superuser_reserved_connections=Quantity(
                3,
                (
                    ev(
                        "postgresql.conf.sample",
                        None,
                        "superuser_reserved_connections = 3",
                        default,
                    ),
                ),
            ),
            reserved_connections=Quantity(
                0, (ev("postgresql.conf.sample", None, "reserved_connections = 0", default),)
            ),
            role_is_superuser=None,
            usable=97,
            formula="100 max_connections - 3 superuser_reserved_connections (PostgreSQL defaults)",
        ),
        settings_module="config.settings.production",
        versions=(
            VersionFact("django", "==4.2.11", ev("requirements/base.txt", 5, "django==4.2.11")),
            VersionFact(
                "psycopg", "==3.1.9", ev("requirements/base.txt", 9, "psycopg[binary]==3.1.9")
            ),
        ),
        unknowns=()
        if hosts
        else (Unknown("web.hosts", "How many hosts run the web service?", 1, 4),),
        assumptions={"web.hosts": hosts} if hosts else {},
    )


def remedies() -> list[Remedy]:
    return [
        Remedy(
            "R01",
            "Persistent connections",
            1,
            1,
            "Reuse connections between requests.",
            "set CONN_MAX_AGE=60",
            predicted=Demand(68, None),
            provides=Mechanism.PERSISTENT_CONNECTIONS,
        ),
        Remedy(
            "R02",
            "Disable persistent connections under ASGI",
            1,
            1,
            "Close each request's connection at its end instead of leaking it to the garbage collector.",
            "CONN_MAX_AGE=0 in config/settings/production.py:23",
            predicted=Demand(16, None),
            predicted_basis="web steady 0 (closed per request), worst unbounded; celery 16",
        ),
        Remedy(
            "R03",
            "Bound in-flight requests per web worker",
            2,
            2,
            "A concurrency limit makes the web group's worst case finite.",
            "subclass UvicornWorker with CONFIG_KWARGS limit_concurrency=8",
            predicted=Demand(16, 48),
            predicted_basis="1 host x 4 workers x 8 + celery 16",
        ),
        Remedy(
            "R05",
            "pgbouncer in transaction mode",
            4,
            3,
            "Caps server connections regardless of workers.",
            "pgbouncer pool_mode=transaction default_pool_size=40; DISABLE_SERVER_SIDE_CURSORS=True",
            predicted=Demand(40, 40),
            predicted_basis="default_pool_size 40 for one db/user pair",
            provides=Mechanism.PGBOUNCER_TRANSACTION,
        ),
    ]


def gathered(hosts: int | None = None, **overrides: object) -> Gathered:
    g = Gathered(
        inputs=[
            InputStatus("events", True, "newrelic-incident.json: 440 events (newrelic-nerdgraph)"),
            InputStatus(
                "repo", True, "repo: 2 process groups, settings config.settings.production"
            ),
            InputStatus(
                "dsn",
                False,
                "",
                adds="the live settings (max_connections, reserved slots), the role, who holds slots now",
            ),
            InputStatus("pgbouncer", False, "", adds="pgbouncer's pools and waiting clients"),
            InputStatus(
                "watch-record", False, "", adds="client backends over time against the usable slots"
            ),
            InputStatus(
                "lab-run", False, "", adds="each remedy's effect measured on a real reproduction"
            ),
        ],
        incident=incident(),
        reserved_wordings={"pre16": 417},
        topology=topology(hosts),
        remedies=remedies(),
        now=at(23, 0),
    )
    for key, value in overrides.items():
        setattr(g, key, value)
    return g
