"""`pgslots probe` against real servers (embedded PG18 and system PG15): every number of the
snapshot, the single connection, privileges, and the server-full refusals."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from live_support import (
    held,
    make_roles,
    pgslots,
    probe_connections_in_log,
    slot_settings,
    wait_for,
)
from pgslots.live.connect import ConnectSettings
from pgslots.live.probe import ProbeRequest, probe
from pgslots.live.record import snapshot_from_json
from pgslots.live.snapshot import SnapshotOptions
from pgslots.rules.live import check_snapshot

pytestmark = pytest.mark.postgres

IDLE_WAIT = 1.0


def by_key(snapshot):
    return Counter(
        {(b.database, b.user, b.application, b.state): b.count for b in snapshot.backends}
    )


def test_probe_reads_every_number_and_holds_one_connection(pg_binaries, start_postgres):
    server = start_postgres(pg_binaries, settings=slot_settings(pg_binaries, 20, 3, 2))
    make_roles(server, app_limit=10)
    server.create_database("appdb", connection_limit=9)
    pg16 = pg_binaries.major >= 16
    with held() as clients:
        clients.open(server, "app", "appdb", "web-1", n=3)
        clients.open(server, "app", "appdb", "web-1", in_transaction=True)
        clients.open(server, "app", "appdb", "celery-worker", n=2)
        clients.open(server, "postgres", "postgres", "psql")
        time.sleep(IDLE_WAIT)
        seen_from_outside: list[tuple[int, int]] = []

        def second_session(_conn):
            seen_from_outside.extend(
                server.execute(
                    "SELECT count(*) FILTER (WHERE application_name = 'pgslots')::int, count(*)::int "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            )

        request = ProbeRequest(
            ConnectSettings(server.dsn("mon", "appdb")), options=SnapshotOptions(app_role="app")
        )
        snapshot = probe(request, while_connected=second_session)

    # The probe held exactly one connection, seen from a second superuser session.
    assert seen_from_outside == [(1, 7 + 1)]
    # Settings, as configured.
    assert snapshot.server_version.split(".")[0] == str(pg_binaries.major)
    assert snapshot.server_version_num // 10000 == pg_binaries.major
    assert (snapshot.max_connections, snapshot.superuser_reserved_connections) == (20, 3)
    assert snapshot.reserved_connections == (2 if pg16 else None)
    # The app role and its usable slots: 20 - 3 (- 2 reserved on 16+).
    assert snapshot.role.name == "app" and snapshot.role.is_superuser is False
    assert snapshot.role.can_use_reserved is (False if pg16 else None)
    assert snapshot.role.connection_limit == 10 and snapshot.role.connections == 6
    assert snapshot.usable_for_role == (15 if pg16 else 17)
    # Client backends: 6 app + 1 psql + this probe.
    assert snapshot.client_backends == 8
    assert (
        snapshot.own_pid is not None
        and snapshot.probe_user == "mon"
        and snapshot.database == "appdb"
    )
    assert by_key(snapshot) == Counter(
        {
            ("appdb", "app", "web-1", "idle"): 3,
            ("appdb", "app", "web-1", "idle in transaction"): 1,
            ("appdb", "app", "celery-worker", "idle"): 2,
            ("postgres", "postgres", "psql", "idle"): 1,
            ("appdb", "mon", "pgslots", "active"): 1,
        }
    )
    assert {b.client for b in snapshot.backends} == {"127.0.0.1"}
    idle = {(b.application, b.state): b for b in snapshot.backends}
    assert IDLE_WAIT <= idle["web-1", "idle"].max_idle_seconds < 60
    assert IDLE_WAIT <= idle["web-1", "idle in transaction"].max_idle_in_transaction_seconds < 60
    assert idle["web-1", "idle"].max_idle_in_transaction_seconds is None
    # Limits: the database's 9 minus 7 held (6 app + the probe) is the tightest.
    assert {(d.name, d.connection_limit, d.connections) for d in snapshot.database_limits} == {
        ("appdb", 9, 7),
        ("postgres", None, 1),
    }
    roles = {r.name: (r.connections, r.connection_limit, r.is_superuser) for r in snapshot.roles}
    assert roles == {"app": (6, 10, False), "mon": (1, None, False), "postgres": (1, None, True)}
    assert (snapshot.headroom_for_role, snapshot.headroom_limited_by) == (2, "database limit")
    assert snapshot.usable_formula.endswith(f"= {snapshot.usable_for_role}")
    # Walsenders, autovacuum and background workers are not client backends.
    assert (
        "autovacuum launcher" in snapshot.other_backends
        and "client backend" not in snapshot.other_backends
    )
    assert snapshot.hidden == ()
    assert not snapshot.refused


def test_probe_as_plain_role_says_what_was_hidden(pg_binaries, start_postgres):
    server = start_postgres(pg_binaries, settings=slot_settings(pg_binaries, 20, 3, 2))
    make_roles(server)
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=2)
        clients.open(server, "postgres", "postgres", "psql")
        plain = probe(
            ProbeRequest(
                ConnectSettings(server.dsn("plain")), options=SnapshotOptions(app_role="app")
            )
        )
        monitor = probe(
            ProbeRequest(
                ConnectSettings(server.dsn("mon")), options=SnapshotOptions(app_role="app")
            )
        )
    # Same totals either way: the counts survive the hiding, the details do not.
    assert plain.client_backends == monitor.client_backends == 4
    assert plain.hidden and "3 client backends of other roles" in plain.hidden[0]
    assert "GRANT pg_monitor TO plain" in plain.hidden[0]
    hidden_groups = [b for b in plain.backends if b.user != "plain"]
    assert hidden_groups and all(b.state is None and b.client is None for b in hidden_groups)
    assert Counter({(b.user, b.application): b.count for b in hidden_groups}) == Counter(
        {("app", "web"): 2, ("postgres", "psql"): 1}
    )
    assert monitor.hidden == ()
    assert {b.state for b in monitor.backends} == {"idle", "active"}
    assert [f.code for f in check_snapshot(plain)].count("PGS202") == 1


def test_probe_cli_uses_one_connection_and_json_reads_back(embedded_pg, start_postgres):
    server = start_postgres(embedded_pg, settings={"max_connections": 10})
    make_roles(server)
    before = probe_connections_in_log(server)
    result = pgslots("probe", server.dsn("mon"), "--app-role", "app", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    snapshot = snapshot_from_json(document)
    assert snapshot.max_connections == 10 and snapshot.client_backends == 1
    assert document["command"] == "probe" and isinstance(document["findings"], list)
    assert wait_for(lambda: probe_connections_in_log(server) - before == 1)
    time.sleep(0.3)  # the log collector may lag: a second connection would show by now
    assert probe_connections_in_log(server) - before == 1


# -- the server is full ----------------------------------------------------------------------


def test_full_for_the_app_role_is_a_refusal_with_the_right_category(pg_binaries, start_postgres):
    pg16 = pg_binaries.major >= 16
    server = start_postgres(pg_binaries, settings=slot_settings(pg_binaries, 8, 2, 2))
    make_roles(server)
    usable_for_app = 4 if pg16 else 6
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=usable_for_app - 1)
        # One slot left for the app role: the probe, as the app role, takes it and sees 0 headroom.
        last = probe(ProbeRequest(ConnectSettings(server.dsn("app"))))
        assert last.usable_for_role == usable_for_app and last.headroom_for_role == 0
        clients.open(server, "app", "postgres", "web")
        result = pgslots("probe", server.dsn("app"), "--format", "json")
        assert result.returncode == 3, result.stderr
        snapshot = snapshot_from_json(json.loads(result.stdout))
        expected = "reserved_role" if pg16 else "reserved_superuser"
        assert snapshot.refused.category == expected
        assert (
            "pg_use_reserved_connections" in snapshot.refused.who_could_connect
            if pg16
            else ("only superusers" in snapshot.refused.who_could_connect)
        )
        assert json.loads(result.stdout)["findings"][0]["code"] == "PGS200"
        text = pgslots("probe", server.dsn("app"))
        assert (
            text.returncode == 3 and text.stdout.startswith("REFUSED") and "PGS200" in text.stdout
        )


def test_pg_use_reserved_connections_member_gets_in_and_reports_the_holders(
    embedded_pg, start_postgres
):
    server = start_postgres(embedded_pg, settings=slot_settings(embedded_pg, 8, 2, 2))
    make_roles(server)
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=2)
        clients.open(server, "app", "postgres", "celery", n=2)
        refused = probe(ProbeRequest(ConnectSettings(server.dsn("app"))))
        assert refused.refused.category == "reserved_role"
        snapshot = probe(
            ProbeRequest(
                ConnectSettings(server.dsn("mon")), options=SnapshotOptions(app_role="app")
            )
        )
    assert snapshot.refused is None
    assert (
        snapshot.role.name == "app"
        and snapshot.usable_for_role == 4
        and snapshot.headroom_for_role == 0
    )
    assert by_key(snapshot) == Counter(
        {
            ("postgres", "app", "web", "idle"): 2,
            ("postgres", "app", "celery", "idle"): 2,
            ("postgres", "mon", "pgslots", "active"): 1,
        }
    )
    codes = [f.code for f in check_snapshot(snapshot)]
    assert codes[0] == "PGS201" and check_snapshot(snapshot)[0].severity.value == "error"


def test_superuser_slots_full_and_too_many_clients(embedded_pg, start_postgres):
    server = start_postgres(embedded_pg, settings=slot_settings(embedded_pg, 6, 2, 1))
    make_roles(server)
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=3)
        clients.open(server, "mon", "postgres", "monitoring")
        # Two free slots left, both superuser-reserved: even pg_use_reserved_connections is refused.
        refused = probe(ProbeRequest(ConnectSettings(server.dsn("mon"))))
        assert refused.refused.category == "reserved_superuser"
        assert "SUPERUSER attribute" in refused.refused.who_could_connect
        clients.open(server, "postgres", "postgres", "psql", n=2)
        full = probe(ProbeRequest(ConnectSettings(server.dsn())))
        assert full.refused.category == "too_many_clients"
        assert full.refused.who_could_connect.startswith("nobody")


def test_role_connection_limit_refusal(pg_binaries, start_postgres):
    server = start_postgres(pg_binaries, settings={"max_connections": 20})
    server.create_role("app", connection_limit=2)
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=2)
        snapshot = probe(ProbeRequest(ConnectSettings(server.dsn("app"))))
    assert snapshot.refused.category == "role_limit"
    assert 'too many connections for role "app"' in snapshot.refused.message


def test_the_probe_connection_is_identified_time_limited_and_read_only(embedded_pg, start_postgres):
    import psycopg

    server = start_postgres(embedded_pg)
    seen = {}

    def inspect(conn):
        for name in (
            "application_name",
            "statement_timeout",
            "lock_timeout",
            "idle_in_transaction_session_timeout",
            "default_transaction_read_only",
            "transaction_read_only",
        ):
            seen[name] = conn.execute(f"SHOW {name}").fetchone()[0]
        try:
            conn.execute("CREATE TABLE pgslots_must_not_write (x int)")
        except psycopg.errors.ReadOnlySqlTransaction:
            seen["write"] = "refused"
        conn.rollback()

    probe(
        ProbeRequest(ConnectSettings(server.dsn(), statement_timeout=3, lock_timeout=1)),
        while_connected=inspect,
    )
    assert seen == {
        "application_name": "pgslots",
        "statement_timeout": "3s",
        "lock_timeout": "1s",
        "idle_in_transaction_session_timeout": "10s",
        "default_transaction_read_only": "on",
        "transaction_read_only": "on",
        "write": "refused",
    }
