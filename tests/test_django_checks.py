"""`pgslots.django`'s system checks, run by `manage.py check` in real Django 4.2 and 5.2 projects.

Each test writes a project whose settings show one situation and asserts what Django's own
check command prints and its exit code. No database server is needed: the checks read the
settings and never connect (the hosts below do not even resolve).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_support import Project, build_venv, postgres_db

IDS = re.compile(r"\(pgslots\.[EWI]\d{3}\)")


@pytest.fixture(scope="session")
def venv_42(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_venv("4.2", tmp_path_factory.mktemp("venvs"))


@pytest.fixture(params=["4.2", "5.2"])
def django_python(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(version, python) for each supported Django LTS (6.0 needs Python >= 3.12)."""
    if request.param == "5.2":
        if importlib.util.find_spec("django") is None:
            pytest.skip("Django is not installed (pip install 'pgslots[lab]')")
        import django

        assert django.VERSION[:2] == (5, 2), (
            f"the test environment has Django {django.get_version()}, expected 5.2"
        )
        return "5.2", sys.executable
    return "4.2", str(request.getfixturevalue("venv_42"))


def ids(output: str) -> list[str]:
    return [m.strip("()") for m in IDS.findall(output)]


def test_asgi_with_persistent_connections_is_the_leak_warning(
    tmp_path: Path, django_python: tuple[str, str]
) -> None:
    _version, python = django_python
    project = Project(
        tmp_path,
        python,
        f"""
        ASGI_APPLICATION = "proj.asgi.application"
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)}}}
    """,
    )
    result = project.manage("check")
    assert result.returncode == 0, result.stderr  # a warning does not stop the project
    output = result.stdout + result.stderr
    assert ids(output) == ["pgslots.W003"], output
    assert "PGS003 Persistent connections under ASGI leak (Django #33497)" in output
    assert (
        "Alias 'default' has CONN_MAX_AGE=60" in output
        and "ASGI_APPLICATION = 'proj.asgi.application'" in output
    )
    assert (
        "HINT: Set CONN_MAX_AGE=0 for ASGI processes; use a pool (Django >= 5.1) or pgbouncer for reuse."
        in output
    )

    strict = project.manage("check", "--fail-level", "WARNING")
    assert strict.returncode == 1 and "pgslots.W003" in strict.stderr
    tagged = project.manage("check", "--tag", "pgslots", "--fail-level", "WARNING")
    assert tagged.returncode == 1 and "pgslots.W003" in tagged.stderr
    deploy = project.manage("check", "--deploy")
    assert "pgslots.W003" in deploy.stdout + deploy.stderr


def test_wsgi_without_persistent_connections_is_silent(
    tmp_path: Path, django_python: tuple[str, str]
) -> None:
    _version, python = django_python
    project = Project(
        tmp_path,
        python,
        f"""
        WSGI_APPLICATION = "proj.wsgi.application"
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=0)}}}
    """,
    )
    result = project.manage("check", "--fail-level", "INFO")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "pgslots" not in result.stdout + result.stderr


def test_pool_on_django_42_is_an_error_naming_the_version(tmp_path: Path, venv_42: Path) -> None:
    project = Project(
        tmp_path,
        venv_42,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=0, OPTIONS={"pool": {"min_size": 2, "max_size": 4}})}}}
    """,
    )
    result = project.manage("check")
    assert (
        result.returncode == 1
    )  # an Error: Django 4.2 would pass 'pool' to psycopg, which rejects it
    assert ids(result.stderr) == ["pgslots.E017"], result.stderr
    version = re.search(r"with Django (4\.2\.\d+)", result.stderr)
    assert version, result.stderr
    assert "the pool exists from Django 5.1" in result.stderr
    assert "HINT: OPTIONS['pool'] exists from Django 5.1" in result.stderr


def test_pool_on_django_52_against_the_configured_budget(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=0, OPTIONS={"pool": {"min_size": 2, "max_size": 10}})}}}
        PGSLOTS = {{"max_connections": 40, "processes": 4}}
    """,
    )
    output = (result := project.manage("check")).stdout + result.stderr
    assert ids(output) == ["pgslots.W001"], output
    assert (
        "can open 40 connections (4 processes x (default max_size 10)) against 37 usable slots"
        in output
    )
    assert "40 max_connections - 3 superuser_reserved - 0 reserved - 0 other clients" in output

    fits = Project(
        tmp_path / "fits",
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=0, OPTIONS={"pool": {"min_size": 2, "max_size": 9}})}}}
        PGSLOTS = {{"max_connections": 40, "processes": 4}}
    """,
    )
    assert "pgslots" not in (done := fits.manage("check")).stdout + done.stderr


def test_pool_with_persistent_connections_and_default_size(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=60, OPTIONS={"pool": True})}}}
    """,
    )
    result = project.manage("check")
    assert result.returncode == 1
    assert ids(result.stderr) == ["pgslots.E004", "pgslots.W005"], result.stderr


def test_pgbouncer_host_without_disabled_cursors_and_a_second_alias(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{
            "default": {postgres_db(HOST="pgbouncer.internal", PORT="6432")},
            "replica": {postgres_db(HOST="db.internal")},
            "reports": {postgres_db(HOST="db.internal", NAME="reports")},
        }}
    """,
    )
    output = (result := project.manage("check")).stdout + result.stderr
    assert ids(output) == ["pgslots.W007", "pgslots.W010"], output
    assert "looks like pgbouncer (its name 'pgbouncer.internal')" in output
    assert "Alias 'reports' points at the same server as 'replica' (db.internal:5432)" in output

    declared = Project(
        tmp_path / "declared",
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(HOST="pgbouncer.internal", PORT="6432")}}}
        PGSLOTS = {{"hosts": {{"pgbouncer.internal": "pgbouncer-session"}}}}
    """,
    )
    assert "pgslots" not in (done := declared.manage("check")).stdout + done.stderr


def test_celery_app_without_concurrency_and_gevent(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)}}}
        CELERY_BROKER_URL = "memory://"
        CELERY_WORKER_POOL = "gevent"
    """,
        init="from .celery import app as celery_app\n",
        extra={
            "celery.py": """
        from celery import Celery
        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
    """
        },
    )
    output = (result := project.manage("check")).stdout + result.stderr
    assert ids(output) == ["pgslots.W009", "pgslots.W021"], output
    assert "Celery app 'proj' sets no worker_concurrency" in output
    assert "uses worker_pool='gevent' with CONN_MAX_AGE=60" in output


def test_sqlite_and_mysql_projects_are_skipped_with_an_info(
    tmp_path: Path, django_python: tuple[str, str]
) -> None:
    _version, python = django_python
    project = Project(
        tmp_path,
        python,
        """
        DATABASES = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3", "CONN_MAX_AGE": 60},
            "legacy": {"ENGINE": "django.db.backends.mysql", "NAME": "legacy", "HOST": "pgbouncer", "CONN_MAX_AGE": 60},
        }
        ASGI_APPLICATION = "proj.asgi.application"
    """,
    )
    result = project.manage("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert ids(output) == ["pgslots.I025", "pgslots.I025"], output
    assert "Alias 'legacy' uses django.db.backends.mysql (mysql)" in output


def test_a_malformed_pgslots_setting_is_one_error(tmp_path: Path) -> None:
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db()}}}
        PGSLOTS = {{"max_connections": "100"}}
    """,
    )
    result = project.manage("check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "(pgslots.E000) PGSLOTS['max_connections'] = '100': expected a whole number >= 0"
        in result.stderr
    )


def test_the_app_imports_nothing_heavy_at_start_up(tmp_path: Path) -> None:
    """django.setup() with the app imports neither pgslots' CLI stack nor its rules: they load
    when a check or the command runs (bench/django_setup.py has the timings)."""
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(CONN_MAX_AGE=60)}}}
    """,
        extra={
            "probe_imports.py": """
        import sys
        import django
        django.setup()
        heavy = ("typer", "rich", "matplotlib", "jinja2", "pgslots.rules", "pgslots.deploy", "pgslots.cli")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        print("pgslots.django.checks" in sys.modules)
    """
        },
    )
    env = project.env(
        {
            "DJANGO_SETTINGS_MODULE": "proj.settings",
            "PYTHONPATH": f"{tmp_path}:{project.env()['PYTHONPATH']}",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "proj.probe_imports"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"], done.stdout
