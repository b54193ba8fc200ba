"""Django settings of the lab project, read from the JSON file in `PGSLOTS_LAB_CONFIG`.

The database block is the part that scenarios vary: `CONN_MAX_AGE`, the psycopg pool
(`OPTIONS["pool"]`, Django >= 5.1), `DISABLE_SERVER_SIDE_CURSORS` for pgbouncer's
transaction mode. The rest is a plain production-like project: DEBUG off, sessions in the
database, the default middleware stack, `ATOMIC_REQUESTS=True`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_CONFIG = json.loads(Path(os.environ["PGSLOTS_LAB_CONFIG"]).read_text())
ROLE = os.environ.get("PGSLOTS_LAB_ROLE", "web")  # "web" or "worker"

SECRET_KEY = _CONFIG["secret_key"]
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "pgslots.lab.sampleapp.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "pgslots.lab.sampleapp.apps.SampleAppConfig",
    "pgslots.django",  # the connection-slot checks (manage.py check --tag pgslots)
]

# Django's default stack (startproject), in its order.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

SESSION_ENGINE = "django.contrib.sessions.backends.db"
TEMPLATES: list[dict] = []


def _database() -> dict:
    db = _CONFIG["database"]
    role_db = db.get(ROLE, {})
    options: dict = {"application_name": role_db.get("application_name", f"lab-{ROLE}")}
    options["connect_timeout"] = db.get("connect_timeout", 10)
    pool = role_db.get("pool")
    if pool:
        options["pool"] = pool
    conn_max_age = db.get("conn_max_age", 0)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": db["host"],
        "PORT": str(db["port"]),
        "NAME": db["name"],
        "USER": role_db["user"],
        "PASSWORD": role_db.get("password", ""),
        "CONN_MAX_AGE": conn_max_age,  # None means unlimited
        "ATOMIC_REQUESTS": True,
        "DISABLE_SERVER_SIDE_CURSORS": bool(db.get("disable_server_side_cursors", False)),
        "OPTIONS": options,
    }


DATABASES = {"default": _database()}

# What the pgslots checks cannot read from the settings: the server's slots, the number of
# web processes, a pgbouncer host. The web server is ASGI in most scenarios.
PGSLOTS = _CONFIG.get("pgslots", {})
if _CONFIG.get("asgi"):
    ASGI_APPLICATION = "pgslots.lab.sampleapp.asgi.application"

# The lab's own knobs (read by views and tasks).
LAB_QUERY_SECONDS = float(_CONFIG.get("query_seconds", 0.3))
LAB_TASK_SECONDS = float(_CONFIG.get("task_seconds", 0.1))
LAB_EVENTS_DIR = _CONFIG["events_dir"]
LAB_APP_NAME = _CONFIG.get("app_name", "shop")

# Celery (prefork) with a broker that needs no server: kombu's filesystem transport, or
# Redis when the run found one.
CELERY_BROKER_URL = _CONFIG["broker"]["url"]
CELERY_BROKER_TRANSPORT_OPTIONS = _CONFIG["broker"].get("transport_options", {})
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_CONCURRENCY = _CONFIG.get("celery_concurrency")  # the worker command passes it too
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Failed requests are recorded by the APM recorder; Django's own 500 traceback logging
# would only make thousands of log lines per run and cost CPU the lab needs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "django": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
