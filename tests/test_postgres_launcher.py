"""The throwaway server every other test relies on: it starts, logs, enforces slots, and
leaves nothing behind."""

from __future__ import annotations

import json
import os
import time

import psycopg
import pytest

from pgslots.lab.postgres import PgBinaries, TempPostgres


def slot_settings(binaries: PgBinaries) -> dict[str, int]:
    settings = {"max_connections": 6, "superuser_reserved_connections": 2}
    if binaries.major >= 16:
        settings["reserved_connections"] = 1
    return settings


def test_server_enforces_slots_and_logs_in_three_formats(pg_binaries, start_postgres):
    pg = start_postgres(pg_binaries, settings=slot_settings(pg_binaries))
    pg.create_role("app")
    pg.create_database("appdb", owner="app")
    held, refused = [], []
    for _ in range(6):
        try:
            held.append(psycopg.connect(pg.dsn("app", "appdb", application_name="hold-app")))
        except psycopg.OperationalError as exc:
            refused.append(str(exc))
    try:
        usable = 6 - 2 - (1 if pg_binaries.major >= 16 else 0)
        assert len(held) == usable
        assert pg.client_backends() == usable
        expected = (
            'reserved for roles with privileges of the "pg_use_reserved_connections" role'
            if pg_binaries.major >= 16
            else "reserved for non-replication superuser connections"
        )
        assert refused and all(expected in message for message in refused)
    finally:
        for conn in held:
            conn.close()

    # The logging collector writes asynchronously: wait (briefly) until it has caught up.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        pg.logs.jsonlog.read_text().count('"FATAL"') < len(refused)
        or pg.logs.stderr.read_text().count("FATAL:") < len(refused)
        or pg.logs.csvlog.read_text().count(",FATAL,") < len(refused)
    ):
        time.sleep(0.05)
    stderr_log = pg.logs.stderr.read_text()
    assert "connection authorized: user=app database=appdb application_name=hold-app" in stderr_log
    assert stderr_log.count("FATAL:") == len(refused)
    assert pg.logs.csvlog.read_text().count(",FATAL,53300,") == len(refused)
    json_fatals = [
        record
        for record in map(json.loads, pg.logs.jsonlog.read_text().splitlines())
        if record.get("error_severity") == "FATAL"
    ]
    assert len(json_fatals) == len(refused) and {r["state_code"] for r in json_fatals} == {"53300"}


def test_stop_removes_everything(pg_binaries):
    server = TempPostgres(pg_binaries).start()
    base_dir, pid = server.base_dir, server.pid
    server.stop()
    server.stop()  # idempotent
    assert base_dir is not None and not base_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_password_auth_rejects_a_wrong_password(embedded_pg, start_postgres):
    pg = start_postgres(embedded_pg, password_auth=True)
    pg.create_role("app", password="right-one")
    with psycopg.connect(pg.dsn("app", "postgres", password="right-one")) as conn:
        assert conn.execute("select current_user").fetchone() == ("app",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.dsn("app", "postgres", password="wrong"))
