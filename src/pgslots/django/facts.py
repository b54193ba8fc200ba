"""What a running Django project's settings say about its connections, as plain data.

`pgslots.django.read` fills these from `django.conf.settings` (without opening a connection);
the rules in `pgslots.rules.runtime` and the runtime audit read them. Nothing here imports
Django, so the rules stay importable (and testable) without a configured project.
"""

from __future__ import annotations

import dataclasses

from pgslots.evidence import Evidence, Resolution

POSTGRESQL = "postgresql"

# How PGSLOTS["hosts"] may describe a database host the settings connect to.
HOST_KINDS = ("postgres", "pgbouncer", "pgbouncer-session")


@dataclasses.dataclass(frozen=True)
class AliasSettings:
    """One entry of DATABASES as Django will use it (defaults applied)."""

    alias: str
    engine: str
    vendor: str  # "postgresql", "sqlite", "mysql", ... (the backend's vendor)
    host: str
    port: str
    database: str
    conn_max_age: int | None  # None: unlimited persistent connections
    health_checks: bool
    atomic_requests: bool
    disable_server_side_cursors: bool
    pool: tuple[int, int | None] | None  # OPTIONS["pool"]: (min_size, max_size); None = no pool
    pool_is_default: bool = False  # pool=True: psycopg_pool's min_size=4, max_size=min_size
    host_kind: str = "postgres"  # one of HOST_KINDS
    host_kind_why: str = ""  # why pgslots thinks so: "PGSLOTS['hosts']", "port 6432", ...

    @property
    def server(self) -> tuple[str, str]:
        """The server this alias reaches: (host, port), libpq's defaults filled in."""
        return (self.host or "localhost", self.port or "5432")

    @property
    def persistent(self) -> bool:
        return self.conn_max_age != 0

    def evidence(self, settings_module: str, key: str, value: object) -> Evidence:
        return runtime_evidence(settings_module, f"DATABASES[{self.alias!r}][{key!r}] = {value!r}")


@dataclasses.dataclass(frozen=True)
class CelerySettings:
    """The configured Celery app's worker settings (None: not set, Celery's default)."""

    app: str  # the app's main name, or "settings" when only CELERY_* settings were found
    concurrency: int | None
    pool: str | None  # worker_pool: "prefork", "threads", "gevent", "eventlet", "solo"
    version: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class BudgetSettings:
    """PGSLOTS[...]: what the project knows and its settings cannot show."""

    max_connections: int | None = None
    superuser_reserved_connections: int | None = None
    reserved_connections: int | None = None
    other_clients: int | None = None
    processes: int | None = None  # Django processes (all hosts) that connect with these settings


@dataclasses.dataclass(frozen=True)
class ProjectSettings:
    settings_module: str
    aliases: tuple[AliasSettings, ...]
    django_version: tuple[int, ...]
    django_version_text: str
    asgi: (
        str | None
    )  # why the project runs under ASGI ("ASGI_APPLICATION = ...", "uvicorn is loaded"), None = WSGI
    psycopg_version: str | None  # psycopg 3, installed
    psycopg2_version: str | None
    psycopg_pool_version: str | None
    celery: CelerySettings | None
    budget: BudgetSettings = dataclasses.field(default_factory=BudgetSettings)

    @property
    def postgresql_aliases(self) -> tuple[AliasSettings, ...]:
        return tuple(a for a in self.aliases if a.vendor == POSTGRESQL)

    def evidence(self, text: str) -> Evidence:
        return runtime_evidence(self.settings_module, text)


def runtime_evidence(settings_module: str, text: str) -> Evidence:
    """Evidence of a value read at run time: "(runtime proj.settings)" in place of a file, since
    a computed setting has no line to cite (a pseudo-path in parentheses, like "(default)")."""
    return Evidence(
        f"(runtime {settings_module})",
        None,
        text,
        Resolution.RUNTIME,
        "read from django.conf.settings of the running project",
    )
