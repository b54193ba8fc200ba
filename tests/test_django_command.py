"""`manage.py pgslots probe|watch|audit` in a real Django 5.2 project, against a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_support import Project, postgres_db
from live_support import make_roles

pytest.importorskip("django")

STAMP = re.compile(r", \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(queries [\d.]+ ms\)")


def pgslots_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.postgres
def test_probe_prints_what_pgslots_probe_prints_for_the_same_server_and_role(
    pg_binaries, start_postgres, tmp_path: Path
) -> None:
    server = start_postgres(pg_binaries, settings={"max_connections": 20}, password_auth=True)
    make_roles(server)
    server.execute("ALTER ROLE mon PASSWORD 'mon-pw-7x'")
    server.create_database("appdb", owner="app")
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{
            "default": {
            postgres_db(
                HOST=server.host,
                PORT=str(server.port),
                NAME="appdb",
                USER="mon",
                PASSWORD="mon-pw-7x",
                CONN_MAX_AGE=0,
                OPTIONS={"sslmode": "disable", "pool": {"max_size": 2}},
            )
        },
            "cache": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "cache.sqlite3"}},
        }}
    """,
    )
    managed = project.manage("pgslots", "probe", "--app-role", "app")
    dsn = f"host={server.host} port={server.port} dbname=appdb user=mon password=mon-pw-7x sslmode=disable"
    direct = pgslots_cli("probe", dsn, "--app-role", "app")

    assert managed.returncode == direct.returncode == 0, managed.stderr + direct.stderr
    assert STAMP.sub("", managed.stdout) == STAMP.sub("", direct.stdout)
    assert "usable by role app              17" in managed.stdout
    assert (
        "mon-pw-7x" not in managed.stdout + managed.stderr
    )  # the password is masked as in pgslots probe
    assert "alias 'cache' (django.db.backends.sqlite3) is not PostgreSQL: skipped" in managed.stderr
    assert (
        f"probe alias 'default' (host={server.host} port={server.port} user=mon dbname=appdb)"
        in managed.stderr
    )

    as_json = project.manage("pgslots", "probe", "--format", "json")
    assert json.loads(as_json.stdout)["snapshot"]["max_connections"] == 20

    watched = project.manage("pgslots", "watch", "--count", "2", "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    assert len(re.findall(r"used \d+/17 usable by mon", watched.stdout)) == 2, watched.stdout


@pytest.mark.postgres
def test_probe_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, start_postgres, pg_binaries
) -> None:
    server = start_postgres(pg_binaries)
    project = Project(
        tmp_path,
        sys.executable,
        f"""
        DATABASES = {{"default": {postgres_db(HOST=server.host, PORT=str(server.port), USER="nobody")}}}
    """,
    )
    refused = project.manage("pgslots", "probe")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "cannot log in" in refused.stderr
    missing = project.manage("pgslots", "probe", "--database", "replica")
    assert missing.returncode == 2
    assert (
        "CommandError: --database replica: no such alias in DATABASES (have: default)"
        in missing.stderr
    )


REPO_SETTINGS = """\
import os
SECRET_KEY = "not-a-secret-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
INSTALLED_APPS = ["pgslots.django"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "HOST": "db.internal",
        "CONN_MAX_AGE": int(os.environ["DB_CONN_MAX_AGE"]),
        "CONN_HEALTH_CHECKS": True,
    }
}
CELERY_BROKER_URL = "memory://"
CELERY_WORKER_CONCURRENCY = int(os.environ["WORKER_CONCURRENCY"])
PGSLOTS = {"max_connections": 50}
"""


def test_audit_fills_the_settings_unknowns_from_the_running_project(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "proj").mkdir(parents=True)
    (repo / "proj" / "__init__.py").write_text("")
    (repo / "proj" / "settings.py").write_text(REPO_SETTINGS)
    (repo / "manage.py").write_text(
        textwrap.dedent("""\
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    """)
    )
    (repo / "Procfile").write_text(
        "web: gunicorn proj.wsgi --workers 4 --threads 2\nworker: celery -A proj worker\n"
    )
    project = Project.existing(repo, sys.executable)
    static = pgslots_cli("audit", str(repo), "--format", "json")
    static_doc = json.loads(static.stdout)
    assert any(u["name"] == "server.max_connections" for u in static_doc["topology"]["unknowns"])

    audited = project.manage(
        "pgslots",
        "audit",
        ".",
        "--format",
        "json",
        env={"DB_CONN_MAX_AGE": "60", "WORKER_CONCURRENCY": "3"},
    )
    assert audited.returncode in (0, 1), audited.stderr
    doc = json.loads(audited.stdout)
    topology = doc["topology"]
    names = {u["name"] for u in topology["unknowns"]}
    assert "server.max_connections" not in names and not any(n.endswith(".cpus") for n in names)
    slots = topology["slots"]
    assert slots["max_connections"]["value"] == 50
    assert slots["max_connections"]["evidence"][0]["resolution"] == "runtime"
    groups = {g["name"]: g for g in topology["groups"]}
    web, worker = groups["web"], groups["worker"]
    assert web["policy"]["conn_max_age"] == 60 and web["policy"]["conn_max_age_known"] is True
    assert web["policy"]["conn_max_age_evidence"][0]["resolution"] == "runtime"
    assert (
        web["policy"]["conn_max_age_evidence"][0]["text"]
        == "DATABASES['default']['CONN_MAX_AGE'] = 60"
    )
    assert (
        worker["processes"]["value"] == 3
        and worker["processes"]["evidence"][0]["resolution"] == "runtime"
    )
    # 4 workers x 2 threads held persistently + 3 Celery children: the budget uses the runtime values.
    assert web["demand"]["worst"] == 8 and worker["demand"]["worst"] == 3
    assert any("resolution runtime" in note for note in topology["notes"])

    text = project.manage(
        "pgslots",
        "audit",
        "--format",
        "text",
        env={"DB_CONN_MAX_AGE": "60", "WORKER_CONCURRENCY": "3"},
    )
    assert "(runtime proj.settings)" in text.stdout
    bad = project.manage(
        "pgslots", "audit", "missing-dir", env={"DB_CONN_MAX_AGE": "0", "WORKER_CONCURRENCY": "3"}
    )
    assert (
        bad.returncode == 2
        and "no such file or directory" in bad.stderr
        and "Traceback" not in bad.stderr
    )
