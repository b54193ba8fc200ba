"""The runtime rules on `ProjectSettings` built by hand: the branches a real project of the
test environment cannot reach (a missing psycopg_pool, psycopg2 only, Django 5.0.1, a
Celery before 5.6), and the mapping of codes to Django check ids."""

from __future__ import annotations

import dataclasses

from pgslots.django.facts import AliasSettings, CelerySettings, ProjectSettings
from pgslots.rules import load_all_checks
from pgslots.rules.runtime import runtime_findings

ALIAS = AliasSettings(
    alias="default",
    engine="django.db.backends.postgresql",
    vendor="postgresql",
    host="db",
    port="",
    database="app",
    conn_max_age=0,
    health_checks=False,
    atomic_requests=False,
    disable_server_side_cursors=False,
    pool=(2, 8),
)
PROJECT = ProjectSettings(
    settings_module="proj.settings",
    aliases=(ALIAS,),
    django_version=(5, 2, 1),
    django_version_text="5.2.1",
    asgi=None,
    psycopg_version="3.2.9",
    psycopg2_version=None,
    psycopg_pool_version="3.2.6",
    celery=None,
)


def codes(project: ProjectSettings) -> list[str]:
    return [f.code for f in runtime_findings(project)]


def test_a_pool_needs_psycopg_3_and_psycopg_pool() -> None:
    assert codes(PROJECT) == []
    without_pool = runtime_findings(dataclasses.replace(PROJECT, psycopg_pool_version=None))
    assert [f.code for f in without_pool] == ["PGS016"]
    assert "psycopg_pool is not installed" in without_pool[0].message
    psycopg2 = runtime_findings(
        dataclasses.replace(PROJECT, psycopg_version=None, psycopg2_version="2.9.9")
    )
    assert [f.code for f in psycopg2] == ["PGS016"] and "psycopg2 2.9.9, not psycopg 3" in psycopg2[
        0
    ].message


def test_django_50_under_asgi_and_old_celery_children() -> None:
    asgi = dataclasses.replace(
        PROJECT,
        aliases=(dataclasses.replace(ALIAS, pool=None),),
        asgi="uvicorn is loaded in this process",
        django_version=(5, 0, 1),
        django_version_text="5.0.1",
    )
    assert codes(asgi) == ["PGS006"]
    assert (
        codes(dataclasses.replace(asgi, django_version=(5, 0, 2), django_version_text="5.0.2"))
        == []
    )
    persistent = dataclasses.replace(ALIAS, pool=None, conn_max_age=600, health_checks=True)
    old_celery = dataclasses.replace(
        PROJECT, aliases=(persistent,), celery=CelerySettings("proj", 4, "prefork", (5, 5, 3))
    )
    assert codes(old_celery) == ["PGS020"]
    assert (
        codes(
            dataclasses.replace(old_celery, celery=CelerySettings("proj", 4, "prefork", (5, 6, 0)))
        )
        == []
    )


def test_every_runtime_code_is_in_the_registry_once() -> None:
    registry = load_all_checks()
    assert registry["PGS025"].severity.value == "info" and registry["PGS025"].area == "audit"


def test_a_project_without_a_database_is_silent() -> None:
    """DATABASES = {} gives Django's dummy backend: nothing to check, nothing to say."""
    dummy = dataclasses.replace(ALIAS, engine="django.db.backends.dummy", vendor="dummy", pool=None)
    assert codes(dataclasses.replace(PROJECT, aliases=(dummy,))) == []
    sqlite = dataclasses.replace(
        ALIAS, engine="django.db.backends.sqlite3", vendor="sqlite", pool=None
    )
    assert codes(dataclasses.replace(PROJECT, aliases=(sqlite,))) == ["PGS025"]
