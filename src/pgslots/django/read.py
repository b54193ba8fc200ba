"""Read the running project's settings into `ProjectSettings`, never opening a connection.

`connections.settings` is Django's own view of DATABASES with its defaults applied
(CONN_MAX_AGE=0, ATOMIC_REQUESTS=False, ...), so what is read is what Django will use.
Backends are not imported (that would import the driver): the vendor is read from ENGINE.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from pgslots import versions
from pgslots.django.facts import (
    HOST_KINDS,
    AliasSettings,
    BudgetSettings,
    CelerySettings,
    ProjectSettings,
)

ASGI_SERVERS = ("uvicorn", "daphne", "hypercorn", "granian")
PGBOUNCER_PORT = "6432"
PSYCOPG_POOL_DEFAULT_MIN_SIZE = 4  # psycopg_pool.ConnectionPool(min_size=4), max_size = min_size
BUDGET_KEYS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "other_clients",
    "processes",
)


class SettingsProblem(ValueError):
    """PGSLOTS is malformed: one line saying which key and what was expected."""


def installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def vendor_of(engine: str) -> str:
    lowered = engine.lower()
    for needle, vendor in (
        ("postg", "postgresql"),
        ("sqlite", "sqlite"),
        ("mysql", "mysql"),
        ("oracle", "oracle"),
    ):
        if needle in lowered:
            return vendor
    return lowered.rsplit(".", 1)[-1] or "unknown"


def pool_of(options: Mapping[str, Any]) -> tuple[tuple[int, int | None] | None, bool]:
    """(min_size, max_size) of OPTIONS["pool"], and whether it is pool=True's default size."""
    pool = options.get("pool")
    if not pool:
        return None, False
    if not isinstance(pool, Mapping):
        return (PSYCOPG_POOL_DEFAULT_MIN_SIZE, PSYCOPG_POOL_DEFAULT_MIN_SIZE), True
    low = pool.get("min_size", PSYCOPG_POOL_DEFAULT_MIN_SIZE)
    high = pool.get("max_size", low)
    low = low if isinstance(low, int) else PSYCOPG_POOL_DEFAULT_MIN_SIZE
    return (
        low,
        high if isinstance(high, int) else None,
    ), "min_size" not in pool and "max_size" not in pool


def host_kind(host: str, port: str, declared: Mapping[str, str]) -> tuple[str, str]:
    """What the host is: PGSLOTS["hosts"] says, else its name or pgbouncer's default port."""
    for key in (f"{host}:{port}", host):
        if key in declared:
            return declared[key], f"PGSLOTS['hosts'][{key!r}]"
    if "bouncer" in host.lower():
        return "pgbouncer", f"its name {host!r}"
    if port == PGBOUNCER_PORT:
        return "pgbouncer", "port 6432, pgbouncer's default"
    return "postgres", ""


def read_alias(
    alias: str, entry: Mapping[str, Any], declared_hosts: Mapping[str, str]
) -> AliasSettings:
    engine = str(entry.get("ENGINE") or "")
    options = entry.get("OPTIONS") or {}
    pool, pool_default = pool_of(options if isinstance(options, Mapping) else {})
    host = str(entry.get("HOST") or "")
    port = str(entry.get("PORT") or "")
    kind, why = host_kind(host, port, declared_hosts)
    return AliasSettings(
        alias=alias,
        engine=engine,
        vendor=vendor_of(engine),
        host=host,
        port=port,
        database=str(entry.get("NAME") or ""),
        conn_max_age=entry.get("CONN_MAX_AGE", 0),
        health_checks=bool(entry.get("CONN_HEALTH_CHECKS", False)),
        atomic_requests=bool(entry.get("ATOMIC_REQUESTS", False)),
        disable_server_side_cursors=bool(entry.get("DISABLE_SERVER_SIDE_CURSORS", False)),
        pool=pool,
        pool_is_default=pool_default,
        host_kind=kind,
        host_kind_why=why,
    )


def read_pgslots_setting(value: Any) -> tuple[BudgetSettings, dict[str, str]]:
    """PGSLOTS = {"max_connections": 100, "processes": 8, "hosts": {"db-pool:6432": "pgbouncer"}}."""
    if value is None:
        return BudgetSettings(), {}
    if not isinstance(value, Mapping):
        raise SettingsProblem(f"PGSLOTS must be a dict, got {type(value).__name__}")
    unknown = sorted(set(value) - set(BUDGET_KEYS) - {"hosts"})
    if unknown:
        raise SettingsProblem(
            f"PGSLOTS: unknown key {unknown[0]!r} (expected: {', '.join(BUDGET_KEYS)}, hosts)"
        )
    numbers: dict[str, int] = {}
    for key in BUDGET_KEYS:
        if key in value:
            number = value[key]
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise SettingsProblem(
                    f"PGSLOTS[{key!r}] = {number!r}: expected a whole number >= 0"
                )
            numbers[key] = number
    hosts = value.get("hosts", {})
    if not isinstance(hosts, Mapping):
        raise SettingsProblem(
            f"PGSLOTS['hosts'] must be a dict of host (or host:port) to one of {', '.join(HOST_KINDS)}"
        )
    for host, kind in hosts.items():
        if kind not in HOST_KINDS:
            raise SettingsProblem(
                f"PGSLOTS['hosts'][{host!r}] = {kind!r}: expected one of {', '.join(HOST_KINDS)}"
            )
    return BudgetSettings(**numbers), {str(k): str(v) for k, v in hosts.items()}


def asgi_reason(settings: Any) -> str | None:
    application = getattr(settings, "ASGI_APPLICATION", None)
    if application:
        return f"ASGI_APPLICATION = {application!r}"
    for name in ASGI_SERVERS:
        if name in sys.modules:
            return f"{name} is loaded in this process"
    return None


def _celery_app() -> Any:
    """The project's Celery app when its module imported one (proj/__init__.py usually does)."""
    if "celery" not in sys.modules:
        return None
    try:
        from celery import _state
    except ImportError:
        return None
    apps = [
        app
        for app in list(getattr(_state, "_apps", ()))
        if getattr(app, "main", None) not in (None, "default")
    ]
    return apps[0] if apps else None


def read_celery(settings: Any) -> CelerySettings | None:
    version = versions.first_number(installed_version("celery"))
    app = _celery_app()
    if app is not None:
        try:
            conf = app.conf
            return CelerySettings(
                str(app.main), conf.get("worker_concurrency"), conf.get("worker_pool"), version
            )
        except Exception:  # noqa: BLE001 - a broken Celery config is Celery's own checks' business
            return CelerySettings(str(app.main), None, None, version)
    names = [name for name in dir(settings) if name.startswith(("CELERY_", "CELERYD_"))]
    if not names:
        return None

    def first(*keys: str) -> Any:
        return next((getattr(settings, k) for k in keys if hasattr(settings, k)), None)

    concurrency = first("CELERY_WORKER_CONCURRENCY", "CELERYD_CONCURRENCY")
    pool = first("CELERY_WORKER_POOL", "CELERYD_POOL")
    return CelerySettings(
        "settings",
        concurrency if isinstance(concurrency, int) else None,
        pool if isinstance(pool, str) else None,
        version,
    )


def read_project() -> ProjectSettings:
    """The running project's connection settings. Raises `SettingsProblem` for a bad PGSLOTS."""
    import django
    from django.conf import settings
    from django.db import connections

    budget, declared_hosts = read_pgslots_setting(getattr(settings, "PGSLOTS", None))
    configured = connections.settings
    aliases = tuple(read_alias(alias, configured[alias], declared_hosts) for alias in configured)
    return ProjectSettings(
        settings_module=str(getattr(settings, "SETTINGS_MODULE", None) or "settings"),
        aliases=aliases,
        django_version=tuple(django.VERSION[:3]),
        django_version_text=django.get_version(),
        asgi=asgi_reason(settings),
        psycopg_version=installed_version("psycopg"),
        psycopg2_version=installed_version("psycopg2", "psycopg2-binary"),
        psycopg_pool_version=installed_version("psycopg-pool", "psycopg_pool"),
        celery=read_celery(settings),
        budget=budget,
    )
