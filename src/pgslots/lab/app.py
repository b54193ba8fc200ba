"""Starting the sample Django project the way deployments run it.

`AppConfigFile` writes the one JSON file the project's settings read; `web_command` and
`worker_command` build the real server command lines (gunicorn sync/gthread, gunicorn +
uvicorn worker, uvicorn `--workers`, Celery prefork); `manage` runs a management command
(`migrate`, `lab_prepare`). Every process is started through the run's `Children`
registry, with `PGSLOTS_LAB_CONFIG` and `PGSLOTS_LAB_ROLE` in its environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pgslots.lab.processes import Child, Children
from pgslots.lab.scenarios import Scenario

SETTINGS_MODULE = "pgslots.lab.sampleapp.settings"
ASGI_APP = "pgslots.lab.sampleapp.asgi:application"
WSGI_APP = "pgslots.lab.sampleapp.wsgi:application"
CELERY_APP = "pgslots.lab.sampleapp.worker"
ITEMS_PATH = "/items/"
HEALTH_PATH = "/health/"
TASK_NAME = "shop.tasks.update_items_seen"


class AppStartError(RuntimeError):
    """A server of the sample app did not come up."""


@dataclasses.dataclass(frozen=True)
class DatabaseTarget:
    """Where Django connects: the server itself, or pgbouncer in front of it."""

    host: str
    port: int
    name: str
    web: tuple[str, str]  # (role, password) of the web processes
    worker: tuple[str, str]  # (role, password) of the Celery worker


def broker_settings(broker_url: str | None, broker_dir: Path) -> dict[str, Any]:
    """Celery's broker: kombu's filesystem transport (no server to run) unless a URL is
    given (e.g. `redis://127.0.0.1:6379/0`). Every folder the transport writes is inside
    `broker_dir`: its `control_folder` (fanout exchanges such as Celery's pidbox) defaults
    to `control/` in the working directory, which a run must leave as it found it."""
    if broker_url:
        return {"url": broker_url, "transport_options": {}}
    broker_dir.mkdir(parents=True, exist_ok=True)
    return {
        "url": "filesystem://",
        "transport_options": {
            "data_folder_in": str(broker_dir),
            "data_folder_out": str(broker_dir),
            "control_folder": str(broker_dir / "control"),
            "polling_interval": 0.05,
            "store_processed": False,
        },
    }


def write_config(
    path: Path,
    scenario: Scenario,
    db: DatabaseTarget,
    *,
    events_dir: Path,
    broker: dict[str, Any],
    secret_key: str,
) -> Path:
    """The settings file of one scenario (see `sampleapp/settings.py`)."""
    config = {
        "secret_key": secret_key,
        "asgi": scenario.server.startswith("asgi"),
        "celery_concurrency": scenario.celery_concurrency,
        "pgslots": pgslots_setting(scenario, db),
        "app_name": "shop",
        "events_dir": str(events_dir),
        "query_seconds": scenario.query_seconds,
        "task_seconds": scenario.task_seconds,
        "broker": broker,
        "database": {
            "host": db.host,
            "port": db.port,
            "name": db.name,
            "conn_max_age": scenario.conn_max_age,
            "disable_server_side_cursors": scenario.pgbouncer_pool_size is not None,
            "web": {
                "application_name": "lab-web",
                "pool": scenario.web_pool,
                "user": db.web[0],
                "password": db.web[1],
            },
            "worker": {
                "application_name": "lab-worker",
                "pool": scenario.worker_pool,
                "user": db.worker[0],
                "password": db.worker[1],
            },
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def pgslots_setting(scenario: Scenario, db: DatabaseTarget) -> dict[str, Any]:
    """The sample project's PGSLOTS: what its settings cannot show (the server's slots, how
    many web processes share them, that the host is pgbouncer)."""
    setting: dict[str, Any] = {
        "max_connections": scenario.max_connections,
        "superuser_reserved_connections": scenario.superuser_reserved_connections,
        "processes": scenario.web_processes,
    }
    if scenario.reserved_connections:
        setting["reserved_connections"] = scenario.reserved_connections
    if scenario.pgbouncer_pool_size is not None:
        setting["hosts"] = {f"{db.host}:{db.port}": "pgbouncer"}
    return setting


def run_checks(config: Path, timeout: float = 120) -> str:
    """`django-admin check --tag pgslots` with the web processes' settings: what the
    `pgslots.django` checks say before the load (its output, errors included)."""
    env = dict(os.environ, **app_env(config, "web"))
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--tag", "pgslots"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.stdout + result.stderr


def app_env(config: Path, role: str) -> dict[str, str]:
    return {
        "PGSLOTS_LAB_CONFIG": str(config),
        "PGSLOTS_LAB_ROLE": role,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONUNBUFFERED": "1",
        # The lab measures connections, not warnings; keep worker logs readable.
        "PYTHONWARNINGS": "ignore",
    }


def manage(config: Path, *args: str, timeout: float = 120) -> str:
    """Run `django-admin <args>` for the sample project; return its stdout."""
    env = dict(os.environ, **app_env(config, "web"))
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AppStartError(
            f"django-admin {' '.join(args)} failed: {result.stderr.strip()[-1500:]}"
        )
    return result.stdout


def web_command(scenario: Scenario, port: int) -> list[str]:
    """The web server's command line, as a deployment would write it."""
    bind = f"127.0.0.1:{port}"
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(scenario.web_processes),
    ]
    gunicorn += [
        "--graceful-timeout",
        "3",
        "--timeout",
        "120",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    if scenario.server == "asgi-gunicorn":
        return [*gunicorn, "--worker-class", "uvicorn_worker.UvicornWorker", ASGI_APP]
    if scenario.server == "gthread":
        return [
            *gunicorn,
            "--worker-class",
            "gthread",
            "--threads",
            str(scenario.threads),
            WSGI_APP,
        ]
    if scenario.server == "sync":
        return [*gunicorn, "--worker-class", "sync", WSGI_APP]
    cmd = [sys.executable, "-m", "uvicorn", ASGI_APP, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(scenario.web_processes), "--no-access-log", "--log-level", "warning"]
    cmd += ["--timeout-graceful-shutdown", "3", "--backlog", "2048"]
    if scenario.limit_concurrency:
        cmd += ["--limit-concurrency", str(scenario.limit_concurrency)]
    return cmd


def worker_command(scenario: Scenario) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        CELERY_APP,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(scenario.celery_concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname",
        "lab-worker@%h",
    ]


def wait_http_ready(child: Child, port: int, children: Children, timeout: float = 60.0) -> None:
    """Until the health endpoint (no database) answers 200."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    while time.monotonic() < deadline:
        children.check_alive([child])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise AppStartError(
        f"{child.name} did not answer on port {port} within {timeout:.0f} s:\n{child.log_tail()}"
    )


def wait_worker_ready(child: Child, children: Children, timeout: float = 60.0) -> None:
    """Until Celery logs its ` ready.` line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check_alive([child])
        if " ready." in child.log_tail(20000):
            return
        time.sleep(0.1)
    raise AppStartError(f"{child.name} was not ready within {timeout:.0f} s:\n{child.log_tail()}")
