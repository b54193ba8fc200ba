"""What `pgslots.django` adds to a project's start-up: `django.setup()` with and without it.

Each measurement is a fresh interpreter (`django.setup()` runs once per process) that times
`django.setup()` alone, with a typical project's INSTALLED_APPS (admin, auth, contenttypes,
sessions, messages, staticfiles) and a PostgreSQL DATABASES entry, then either nothing more or
`"pgslots.django"`. The runs alternate (without, with, without, ...) so that disk cache and
machine load hit both sides alike; the medians and their difference are printed, with the
heavy modules that the app must NOT add at start-up (Typer, Rich, matplotlib, Jinja2,
psycopg, pgslots' rules) checked in the "with" runs against the "without" runs. A third figure times `manage.py check` (which runs the
checks and imports the rules) for the cost of the checks themselves.

Run by hand: `.venv/bin/python bench/django_setup.py [--runs 15]`. Target: difference < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pgslots

SRC = Path(pgslots.__file__).resolve().parent.parent
HEAVY = ("typer", "rich", "matplotlib", "jinja2", "psycopg", "pgslots.rules", "pgslots.deploy")

SETTINGS = """\
import os
SECRET_KEY = "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
] + (["pgslots.django"] if os.environ.get("WITH_PGSLOTS") == "1" else [])
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "app", "HOST": "db", "CONN_MAX_AGE": 60}}
ASGI_APPLICATION = "benchproj.asgi.application"
"""

TIMED_SETUP = """\
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import django
django.setup()
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY} and any(m == h or m.startswith(h + ".") for h in HEAVY))
print(json.dumps({"seconds": elapsed, "cpu": cpu, "heavy": heavy}))
"""


def run_once(project: Path, with_app: bool) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=f"{project}{os.pathsep}{SRC}",
        DJANGO_SETTINGS_MODULE="benchproj.settings",
        WITH_PGSLOTS="1" if with_app else "0",
    )
    code = f"HEAVY = {HEAVY!r}\n" + TIMED_SETUP
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def time_check(project: Path) -> float:
    env = dict(
        os.environ,
        PYTHONPATH=f"{project}{os.pathsep}{SRC}",
        DJANGO_SETTINGS_MODULE="benchproj.settings",
        WITH_PGSLOTS="1",
    )
    code = (
        "import time, django; django.setup()\nfrom django.core.management import call_command\n"
        "t0 = time.perf_counter()\ncall_command('check', '--tag', 'pgslots', verbosity=0, stderr=open('/dev/null', 'w'))\n"
        "print(time.perf_counter() - t0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per side (default 21)")
    args = parser.parse_args()
    import django

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "benchproj").mkdir()
        (project / "benchproj" / "__init__.py").write_text("")
        (project / "benchproj" / "settings.py").write_text(SETTINGS)
        run_once(project, False), run_once(project, True)  # warm the disk cache and the .pyc files
        without, with_app, heavy, heavy_anyway = [], [], set(), set()
        cpu_without, cpu_with = [], []
        for _ in range(args.runs):
            plain = run_once(project, False)
            without.append(plain["seconds"])
            cpu_without.append(plain["cpu"])
            heavy_anyway.update(plain["heavy"])
            result = run_once(project, True)
            with_app.append(result["seconds"])
            cpu_with.append(result["cpu"])
            heavy.update(result["heavy"])
        heavy -= heavy_anyway  # e.g. psycopg: Django's backend imports it at setup either way
        checks = [time_check(project) for _ in range(5)]
    base, added = statistics.median(without), statistics.median(with_app)
    cpu_base, cpu_added = statistics.median(cpu_without), statistics.median(cpu_with)
    print(
        f"django.setup(), Django {django.get_version()}, Python {sys.version.split()[0]}, {args.runs} runs each, alternated"
    )
    print("                          wall median (min-max)            CPU median (min-max)")
    for label, wall, cpu in (
        ("without pgslots.django", without, cpu_without),
        ("with pgslots.django", with_app, cpu_with),
    ):
        print(
            f"  {label:<22}  {statistics.median(wall) * 1000:6.1f} ms ({min(wall) * 1000:.1f}-{max(wall) * 1000:.1f})"
            f"      {statistics.median(cpu) * 1000:6.1f} ms ({min(cpu) * 1000:.1f}-{max(cpu) * 1000:.1f})"
        )
    print(
        f"  difference              wall {(added - base) * 1000:+6.1f} ms (ratio {added / base:.3f}), "
        f"CPU {(cpu_added - cpu_base) * 1000:+6.1f} ms (ratio {cpu_added / cpu_base:.3f}); target < 50 ms"
    )
    print(
        "  (wall time includes waiting for the CPU on a shared machine; CPU time is the cost itself)"
    )
    print(
        f"  heavy modules the app adds at setup: {', '.join(sorted(heavy)) or 'none'} (checked: {', '.join(HEAVY)})"
    )
    print(
        f"manage.py check --tag pgslots (the checks themselves, imports the rules): median {statistics.median(checks) * 1000:.1f} ms over 5 runs"
    )
    return 0 if min(added - base, cpu_added - cpu_base) < 0.050 and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
