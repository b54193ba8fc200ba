"""The pgbouncer admin console, read from a real pgbouncer (Debian binary, transaction mode,
loopback) with real clients waiting for a server connection."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from conftest import require
from live_support import held, make_roles, pgslots, wait_for
from pgslots.lab.pgbouncer import TempPgbouncer, find_pgbouncer
from pgslots.live.connect import ConnectSettings
from pgslots.live.pgbouncer import read_pgbouncer
from pgslots.live.probe import ProbeRequest, probe
from pgslots.live.record import snapshot_from_json
from pgslots.live.snapshot import SnapshotOptions
from pgslots.rules.live import check_snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]

SLEEP = 3.0


@pytest.fixture
def pgbouncer_binary():
    require(find_pgbouncer() is not None, "pgbouncer")


@contextlib.contextmanager
def busy_clients(
    bouncer: TempPgbouncer, user: str, busy: int, waiting: int, application: str
) -> Iterator[list[threading.Thread]]:
    """`busy` clients through pgbouncer running a long query, then `waiting` more that only
    need a moment once they get a server connection."""
    errors: list[BaseException] = []

    def run(sql: str) -> None:
        try:
            with psycopg.connect(
                bouncer.dsn("appdb", user, application_name=application),
                autocommit=True,
                prepare_threshold=None,
                connect_timeout=10,
            ) as conn:
                conn.execute(sql)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(f"SELECT pg_sleep({SLEEP})",), daemon=True)
        for _ in range(busy)
    ]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: (
            sum(p.sv_active for p in read_pgbouncer(bouncer.admin_dsn()).pools if p.user == user)
            == busy
        )
    )
    threads += [
        threading.Thread(target=run, args=("SELECT 1",), daemon=True) for _ in range(waiting)
    ]
    for thread in threads[busy:]:
        thread.start()
    try:
        yield threads
    finally:
        for thread in threads:
            thread.join(SLEEP + 10)
    assert not errors, errors


def test_waiting_clients_maxwait_and_pool_sums(embedded_pg, start_postgres, pgbouncer_binary):
    server = start_postgres(embedded_pg, settings={"max_connections": 20})
    make_roles(server)
    server.create_database("appdb")
    settings = {
        "default_pool_size": 2,
        "reserve_pool_size": 1,
        "reserve_pool_timeout": 30,
        "max_db_connections": 5,
    }
    with TempPgbouncer(server, {"appdb": "appdb"}, settings=settings, users=("app",)) as bouncer:
        idle = psycopg.connect(
            bouncer.dsn("appdb", "postgres"), autocommit=True, prepare_threshold=None
        )
        idle.execute("SELECT 1")  # creates the appdb/postgres pool
        started = time.monotonic()
        with busy_clients(bouncer, "app", 2, 3, "web"):
            wait_for(lambda: read_pgbouncer(bouncer.admin_dsn()).clients_waiting == 3)
            waiting_seen = time.monotonic()
            time.sleep(1.0)
            before_read = time.monotonic()
            snapshot = probe(
                ProbeRequest(
                    ConnectSettings(server.dsn("mon", "appdb")),
                    bouncer.admin_dsn(),
                    SnapshotOptions(app_role="app"),
                )
            )
            after_read = time.monotonic()
        idle.close()
    state = snapshot.pgbouncer
    assert state.kind == "pgbouncer" and state.version.startswith("PgBouncer 1.")
    pools = {(p.database, p.user): p for p in state.pools}
    assert set(pools) == {("appdb", "app"), ("appdb", "postgres")}
    app = pools["appdb", "app"]
    assert (app.cl_active, app.cl_waiting, app.sv_active) == (2, 3, 2)
    assert app.pool_mode == "transaction" and app.pool_size == 2 and app.reserve_pool_size == 1
    assert before_read - waiting_seen <= app.maxwait_seconds <= after_read - started
    assert state.clients_waiting == 3 and state.maxwait_seconds == app.maxwait_seconds
    clients = {(c.user, c.application, c.state): c for c in state.clients}
    assert (
        clients["app", "web", "waiting"].count == 3 and clients["app", "web", "active"].count == 2
    )
    assert clients["app", "web", "waiting"].max_wait_seconds == pytest.approx(
        app.maxwait_seconds, abs=0.5
    )
    # Two pairs of 2 + 1 reserve = 6, capped to 5 by max_db_connections.
    assert state.server_side_capacity == 5
    assert state.server_side_capacity_formula == (
        "appdb/app 2+1 + appdb/postgres 2+1 = 6, capped by max_db_connections appdb=5 to 5"
    )
    assert {
        d.name: (d.pool_size, d.reserve_pool_size, d.max_connections) for d in state.databases
    } == {"appdb": (2, 1, 5)}
    assert state.config["pool_mode"] == "transaction" and state.config["default_pool_size"] == "2"
    assert "auth_file" not in state.config
    # On the server: pgbouncer's 2 busy server connections show as client backends of app.
    assert sum(b.count for b in snapshot.backends if b.user == "app" and b.state == "active") == 2
    findings = {f.code: f for f in check_snapshot(snapshot)}
    assert "PGS208" in findings and "3 client(s) wait" in findings["PGS208"].message
    assert "PGS209" not in findings


def test_pool_sizes_over_pairs_exceeding_the_server(embedded_pg, start_postgres, pgbouncer_binary):
    server = start_postgres(
        embedded_pg, settings={"max_connections": 10, "superuser_reserved_connections": 3}
    )
    make_roles(server)
    server.create_database("appdb")
    with TempPgbouncer(
        server, {"appdb": "appdb"}, settings={"default_pool_size": 5}, users=("app", "mon")
    ) as bouncer:
        for user in ("app", "mon"):
            with psycopg.connect(
                bouncer.dsn("appdb", user), autocommit=True, prepare_threshold=None
            ) as conn:
                conn.execute("SELECT 1")
        result = pgslots(
            "probe",
            server.dsn("mon"),
            "--app-role",
            "app",
            "--pgbouncer",
            bouncer.admin_dsn(),
            "--format",
            "json",
        )
    assert result.returncode == 1, result.stderr  # PGS209 is an error
    document = json.loads(result.stdout)
    state = snapshot_from_json(document).pgbouncer
    assert state.server_side_capacity == 10
    codes = {f["code"]: f for f in document["findings"]}
    assert (
        "PGS209" in codes
        and "may open 10 server connections, more than the 7 usable" in codes["PGS209"]["message"]
    )


def test_server_full_falls_back_to_the_pgbouncer_console(
    pg_binaries, start_postgres, pgbouncer_binary
):
    server = start_postgres(
        pg_binaries, settings={"max_connections": 6, "superuser_reserved_connections": 2}
    )
    make_roles(server)
    server.create_database("appdb")
    with (
        TempPgbouncer(
            server, {"appdb": "appdb"}, settings={"default_pool_size": 2}, users=("app",)
        ) as bouncer,
        held() as clients,
    ):
        clients.open(server, "app", "appdb", "web", n=2)
        with busy_clients(bouncer, "app", 2, 1, "worker"):
            wait_for(lambda: read_pgbouncer(bouncer.admin_dsn()).clients_waiting == 1)
            result = pgslots(
                "probe",
                server.dsn("app", "appdb"),
                "--pgbouncer",
                bouncer.admin_dsn(),
                "--format",
                "json",
            )
    assert result.returncode == 3, result.stderr
    snapshot = snapshot_from_json(json.loads(result.stdout))
    assert snapshot.refused.category == "reserved_superuser"
    pool = next(p for p in snapshot.pgbouncer.pools if p.user == "app")
    assert (pool.cl_active, pool.cl_waiting, pool.sv_active) == (2, 1, 2)
    assert snapshot.pgbouncer.server_connections == 2


def test_unreachable_pgbouncer_is_one_line_exit_2(embedded_pg, start_postgres):
    from pgslots.lab.postgres import free_port

    server = start_postgres(embedded_pg)
    result = pgslots(
        "probe", server.dsn(), "--pgbouncer", f"host=127.0.0.1 port={free_port()} dbname=pgbouncer"
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pgbouncer admin console" in result.stderr
