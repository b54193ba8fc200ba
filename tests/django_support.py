"""Real Django projects for the `pgslots.django` tests, under the Django versions it supports.

Django 5.2 is the test environment's own (the lab's). Django 4.2 gets a virtual environment
built from PyPI wheels: `pip download` fills a wheel cache (tmp/pip-wheels at the checkout's
root, or $PGSLOTS_WHEEL_CACHE) once, and every later build installs from it offline, so the
venv costs a few seconds per test session. The projects get pgslots from this checkout's
sources on PYTHONPATH only: the app must work with nothing of pgslots' own dependencies
installed but psycopg.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pgslots

SRC = Path(pgslots.__file__).resolve().parent.parent
ROOT = SRC.parent
WHEEL_CACHE = Path(os.environ.get("PGSLOTS_WHEEL_CACHE") or ROOT / "tmp" / "pip-wheels")

REQUIREMENTS = {"4.2": ("Django==4.2.*", "psycopg[binary]>=3.1")}


def _pip(*args: str, python: Path | None = None) -> subprocess.CompletedProcess[str]:
    target = ["--python", str(python)] if python else []
    return subprocess.run(
        [sys.executable, "-m", "pip", *target, *args, "--disable-pip-version-check", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def build_venv(version: str, where: Path) -> Path:
    """A venv with Django `version` (LTS) and psycopg 3; returns its python."""
    requirements = REQUIREMENTS[version]
    venv = where / f"django-{version}"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    installed = _pip(
        "install", "--no-index", "--find-links", str(WHEEL_CACHE), *requirements, python=python
    )
    if installed.returncode != 0:  # first run on this machine (or a new pin): fill the cache
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        fetched = _pip("download", "-d", str(WHEEL_CACHE), *requirements)
        if fetched.returncode != 0:
            raise RuntimeError(
                f"pip download {' '.join(requirements)} failed: {fetched.stderr.strip()[-800:]}"
            )
        installed = _pip(
            "install", "--no-index", "--find-links", str(WHEEL_CACHE), *requirements, python=python
        )
        if installed.returncode != 0:
            raise RuntimeError(
                f"pip install from {WHEEL_CACHE} failed: {installed.stderr.strip()[-800:]}"
            )
    return python


MANAGE = """\
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

BASE_SETTINGS = """\
SECRET_KEY = "not-a-secret-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["pgslots.django"]
"""


class Project:
    """A Django project on disk: `proj/settings.py` (base + the test's lines) and manage.py."""

    def __init__(
        self,
        root: Path,
        python: str | Path,
        settings: str,
        *,
        init: str = "",
        extra: dict[str, str] | None = None,
    ):
        self.root = root
        self.python = str(python)
        (root / "proj").mkdir(parents=True, exist_ok=True)
        (root / "manage.py").write_text(MANAGE)
        (root / "proj" / "__init__.py").write_text(textwrap.dedent(init))
        (root / "proj" / "settings.py").write_text(BASE_SETTINGS + textwrap.dedent(settings))
        for name, text in (extra or {}).items():
            (root / "proj" / name).write_text(textwrap.dedent(text))

    @classmethod
    def existing(cls, root: Path, python: str | Path) -> Project:
        """A project the test wrote itself (e.g. inside a deployment repository)."""
        project = cls.__new__(cls)
        project.root, project.python = root, str(python)
        return project

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PG"))}
        env["PYTHONPATH"] = str(SRC)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def manage(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.root,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def postgres_db(**entries: object) -> str:
    """A DATABASES entry for PostgreSQL, as settings source text."""
    entry = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "USER": "app",
        "HOST": "db.internal",
        "PORT": "5432",
    }
    entry.update(entries)
    return repr(entry)
