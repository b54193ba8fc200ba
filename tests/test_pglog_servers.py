"""Real servers, real clients: exhaust PostgreSQL 15 and 18 under several roles, then check
that `pgslots events --format json` on the server's own stderr, csvlog and jsonlog reports
the rejections the clients saw, per category, role and database.

The stderr logs use non-default prefixes: pgBadger's (which has %u, %d, %a and %h) and
'%m [%p] ' (which has neither user nor database, so they come from the pid's
`connection authorized` line, and the client from its `connection received` line).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgslots.events.taxonomy import classify
from pgslots.lab.postgres import TempPostgres

SLOT_CATEGORIES = {
    "too_many_clients",
    "reserved_superuser",
    "reserved_role",
    "role_limit",
    "database_limit",
}
PREFIXES = {
    "pgbadger": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "no-user-db": "%m [%p] ",
}


def _connect(server: TempPostgres, user: str, db: str, app: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        server.dsn(user, db, application_name=app, connect_timeout=10), autocommit=True
    )


def exhaust(server: TempPostgres) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]]:
    """Take every slot a role can, step by step, and record each refusal the client saw:
    Counter of (category, role, database), and of (role, application) for held sessions."""
    pg16 = server.binaries.major >= 16
    server.create_role("app")
    server.create_role("lim", connection_limit=1)
    server.create_role("monitor", member_of=("pg_use_reserved_connections",) if pg16 else ())
    server.create_database("appdb", owner="app")
    server.create_database("limdb", owner="app", connection_limit=1)
    seen: Counter[tuple[str, str, str]] = Counter()
    held: list[psycopg.Connection[Any]] = []
    held_by: Counter[tuple[str, str]] = Counter()

    def fill(user: str, db: str, app: str, limit: int = 20) -> None:
        for _ in range(limit):
            try:
                held.append(_connect(server, user, db, app))
                held_by[(user, app)] += 1
            except psycopg.OperationalError as exc:
                seen[(classify(str(exc))[0].value, user, db)] += 1
                return
        raise AssertionError(f"{user}@{db} was never refused")

    try:
        fill("lim", "postgres", "hold-lim")  # role CONNECTION LIMIT 1
        fill("app", "limdb", "hold-limdb")  # database CONNECTION LIMIT 1
        for conn in held:
            conn.close()
        held.clear()
        fill("app", "appdb", "web")  # up to the reserved slots
        fill("monitor", "appdb", "monitoring")  # PG16+: takes the reserved_connections slot
        fill("app", "appdb", "web")
        fill("postgres", "postgres", "admin")  # superusers take the last slots
        fill("app", "appdb", "celery")
    finally:
        for conn in held:
            conn.close()
    return seen, held_by


def wait_for(path: Path, marker: bytes, count: int, timeout: float = 15.0) -> None:
    """The logging collector writes asynchronously: wait until the log holds `count` markers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(marker) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {count} x {marker!r}")


def pgslots_events(*args: str) -> dict[str, Any]:
    """`pgslots events ... --format json` as a user runs it: the CLI, in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", "events", *args, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.postgres
@pytest.mark.parametrize("prefix_name", sorted(PREFIXES))
def test_server_logs_report_what_the_clients_saw(
    pg_binaries, start_postgres, prefix_name, tmp_path
) -> None:
    settings = {"max_connections": 8, "superuser_reserved_connections": 2}
    if pg_binaries.major >= 16:
        settings["reserved_connections"] = 1
    server = start_postgres(pg_binaries, settings=settings, log_line_prefix=PREFIXES[prefix_name])
    seen, held_by = exhaust(server)
    refusals = sum(seen.values())
    expected_categories = {"too_many_clients", "reserved_superuser", "role_limit", "database_limit"}
    if pg_binaries.major >= 16:
        expected_categories.add("reserved_role")
    assert {category for category, _u, _d in seen} == expected_categories

    logs = [server.logs.stderr, server.logs.csvlog] + (
        [server.logs.jsonlog] if pg_binaries.major >= 15 else []
    )
    for log in logs:
        wait_for(log, b"FATAL", refusals)
    copies = []
    for log in logs:  # the server's directory goes away at teardown; read copies
        copy = tmp_path / log.name
        copy.write_bytes(log.read_bytes())
        copies.append(copy)

    user_in_prefix = "%u" in PREFIXES[prefix_name]
    for copy in copies:
        report = pgslots_events(str(copy))
        (summary,) = report["inputs"]
        assert summary["skipped"] == 0, summary
        server_log = report["server_log"]
        by_category = {k: v for k, v in report["by_category"].items() if k in SLOT_CATEGORIES}
        assert by_category == _sum_by_category(seen), copy.name
        rejections = server_log["rejections_by"]
        stderr_without_user = copy.suffix == ".log" and not user_in_prefix
        expected_users: Counter[str] = Counter()
        expected_dbs: Counter[str] = Counter()
        for (category, user, db), n in seen.items():
            # 'too many clients' is refused before authorization: no line but the FATAL names
            # the role, so a prefix without %u/%d cannot tell it.
            unknown = stderr_without_user and category == "too_many_clients"
            expected_users[user if not unknown else "(unknown)"] += n
            expected_dbs[db if not unknown else "(unknown)"] += n
        assert rejections["user"] == dict(expected_users), copy.name
        assert rejections["db"] == dict(expected_dbs), copy.name
        assert rejections["client"] == {"127.0.0.1": refusals}, copy.name
        assert server_log["inferred_version"] == pg_binaries.version
        # Backends: the peak held is max_connections; refused-after-auth sessions are not held.
        assert server_log["peak_backends"] == settings["max_connections"], copy.name
        # Per role and application: what the clients held, plus at most the one refused after
        # authentication, which holds a slot between its 'connection authorized' and its FATAL.
        held_app = held_by[("app", "web")] + held_by[("app", "celery")]
        assert held_app <= server_log["backends_by"]["user"]["app"] <= held_app + 1, copy.name
        assert (
            held_by[("app", "web")]
            <= server_log["backends_by"]["app"]["web"]
            <= held_by[("app", "web")] + 1
        )
        assert server_log["backends_by"]["app"]["admin"] == held_by[("postgres", "admin")]
        wording = " ".join(server_log["inferred_reserved"])
        if pg_binaries.major >= 16:
            assert "reserved_connections > 0" in wording
        else:
            assert "PostgreSQL <= 15" in wording and server_log["inferred_version"].startswith("15")


def _sum_by_category(seen: Counter[tuple[str, str, str]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for (category, _u, _d), n in seen.items():
        total[category] += n
    return dict(total)
