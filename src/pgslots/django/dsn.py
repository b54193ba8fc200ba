"""The libpq DSN of a DATABASES entry, for the probe (`manage.py pgslots probe|watch`).

Django passes NAME/USER/PASSWORD/HOST/PORT and OPTIONS to psycopg; OPTIONS also holds
Django's and psycopg's own keys (`pool`, `isolation_level`, `server_side_binding`,
`assume_role`, ...), which libpq would reject, so only libpq's keywords are kept. The probe
sets its own `application_name` and `connect_timeout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBE_OWNS = ("application_name", "connect_timeout")


def libpq_keywords() -> frozenset[str]:
    from psycopg import pq

    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def dsn_for(entry: Mapping[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    options = entry.get("OPTIONS") or {}
    keywords = libpq_keywords()
    params: dict[str, Any] = {}
    for key, name in (
        ("host", "HOST"),
        ("port", "PORT"),
        ("dbname", "NAME"),
        ("user", "USER"),
        ("password", "PASSWORD"),
    ):
        if entry.get(name):
            params[key] = str(entry[name])
    if "dbname" not in params and "service" not in options:
        params["dbname"] = "postgres"  # what Django connects to when NAME is empty
    params.update(
        {
            k: v
            for k, v in options.items()
            if k in keywords and k not in PROBE_OWNS and v is not None
        }
    )
    return make_conninfo("", **params)
