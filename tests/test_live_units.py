"""The pure parts of the live pipeline: slot arithmetic, rules on constructed snapshots,
option parsing, records, the exporter's gauges and the terminal view."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from pgslots.cli.live import parse_warn
from pgslots.errors import InputError
from pgslots.live.connect import failure_of
from pgslots.live.exporter import SnapshotCollector, parse_address
from pgslots.live.model import (
    BackendGroup,
    DatabaseLimit,
    GroupExpectation,
    Refusal,
    RoleInfo,
    Snapshot,
)
from pgslots.live.record import load_snapshot, read_records
from pgslots.live.slots import headroom, usable_slots
from pgslots.report.snapshot import render_json, summary_line
from pgslots.report.watch_view import render_view, sparkline
from pgslots.rules.live import check_snapshot

WHEN = dt.datetime(2026, 5, 11, 22, 27, tzinfo=dt.timezone.utc)
APP = RoleInfo("app", False, False, None, 90)


def snapshot(**fields) -> Snapshot:
    base = {
        "taken_at": WHEN,
        "target": "host=db user=mon",
        "server_version": "16.2",
        "max_connections": 100,
        "superuser_reserved_connections": 3,
        "reserved_connections": 2,
        "role": APP,
        "usable_for_role": 95,
        "client_backends": 91,
        "headroom_for_role": 4,
        "headroom_limited_by": "server",
        "probe_user": "mon",
        "own_pid": 42,
        "roles": (APP, RoleInfo("mon", False, True, None, 1)),
    }
    base.update(fields)
    return Snapshot(**base)


def test_usable_slots_per_role_kind():
    assert usable_slots(100, 3, 2, APP) == (
        95,
        ("100 max_connections - 3 superuser_reserved_connections - 2 reserved_connections = 95"),
    )
    usable, formula = usable_slots(100, 3, 2, RoleInfo("mon", False, True, None))
    assert usable == 97 and "are open to it" in formula
    assert (
        usable_slots(100, 3, None, RoleInfo("app", False, None, None))[0] == 97
    )  # PG15: no reserved_connections
    assert usable_slots(100, 3, 2, RoleInfo("postgres", True, True, None))[0] == 100


def test_headroom_is_the_tightest_limit():
    role = RoleInfo("app", False, False, 20, 18)
    assert headroom(95, 60, role, DatabaseLimit("appdb", None, 50))[:2] == (2, "role limit")
    assert headroom(95, 60, role, DatabaseLimit("appdb", 51, 50))[:2] == (1, "database limit")
    assert headroom(95, 96, APP, None)[:2] == (
        0,
        "server",
    )  # superusers in reserved slots: never negative
    superuser = RoleInfo("postgres", True, True, 1, 5)
    assert headroom(100, 60, superuser, DatabaseLimit("appdb", 1, 50))[:2] == (
        40,
        "server",
    )  # exempt


def test_warn_and_address_parsing():
    assert parse_warn("20%") == pytest.approx(0.2) and parse_warn("0.1") == pytest.approx(0.1)
    assert parse_warn("35") == pytest.approx(0.35)
    for bad in ("lots", "120%", "-5%"):
        with pytest.raises(InputError):
            parse_warn(bad)
    assert parse_address("127.0.0.1:9187") == ("127.0.0.1", 9187)
    assert parse_address(":9187") == ("0.0.0.0", 9187) and parse_address("[::1]:0") == ("::1", 0)
    with pytest.raises(InputError):
        parse_address("9187")


def test_connect_failures_are_sorted():
    refused = failure_of(
        'connection failed: connection to server at "10.0.3.14", port 5432 failed: FATAL:  '
        "remaining connection slots are reserved for non-replication superuser connections"
    )
    assert refused.refusal.category == "reserved_superuser"
    combined = failure_of(
        'connection failed: connection to server at "::1", port 5432 failed: FATAL:  sorry, too many clients already\n'
        "Multiple connection attempts failed. All failures were:\n"
        "- host: 'db', port: '5432', hostaddr: '10.0.0.1': connection failed: connection to server at \"10.0.0.1\", "
        "port 5432 failed: FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute\n"
    )
    assert combined.refusal.category == "too_many_clients"
    assert combined.refusal.categories == ("too_many_clients", "reserved_superuser")
    assert combined.refusal.message == "sorry, too many clients already"
    assert (
        failure_of("connection failed: FATAL:  the database system is starting up").kind
        == "not_ready"
    )


def test_rules_on_constructed_snapshots():
    idle_tx = BackendGroup(
        "appdb",
        "app",
        "web",
        "10.0.0.7",
        "idle in transaction",
        3,
        max_idle_in_transaction_seconds=95.0,
    )
    found = {f.code: f for f in check_snapshot(snapshot(backends=(idle_tx,)))}
    assert (
        found["PGS201"].severity.value == "warning"
        and "4 more connection(s) of 95" in found["PGS201"].message
    )
    assert (
        "3 session(s) idle in transaction" in found["PGS203"].message
        and "(oldest 95 s)" in found["PGS203"].message
    )
    assert "PGS212" not in found  # only the probe's own connection belongs to another role
    assert "PGS201" not in {f.code for f in check_snapshot(snapshot(headroom_for_role=40))}
    superuser_app = snapshot(role=RoleInfo("postgres", True, True, None, 5), probe_user="postgres")
    assert "PGS207" in {f.code for f in check_snapshot(superuser_app)}
    expectations = (
        GroupExpectation("web", "web", 12, 4, 8),
        GroupExpectation("beat", "beat", 1, 1, 1),
    )
    found = {f.code: f for f in check_snapshot(snapshot(expectations=expectations))}
    assert found["PGS210"].severity.value == "warning" and "holds 12" in found["PGS210"].message
    refused = snapshot(refused=Refusal("reserved_role", "remaining ...", "superusers and ..."))
    assert check_snapshot(refused)[0].code == "PGS200"


def test_records_and_snapshot_files(tmp_path):
    one = snapshot()
    good = tmp_path / "good.jsonl"
    good.write_text(render_json(one, indent=None) + "\n\n" + render_json(one, indent=None) + "\n")
    assert read_records(good) == [one, one]
    probe_json = tmp_path / "probe.json"
    probe_json.write_text(render_json(one))
    assert load_snapshot(probe_json) == one and load_snapshot(good) == one
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="not a pgslots record file"):
        read_records(junk)
    with pytest.raises(InputError, match="cannot read"):
        read_records(tmp_path / "missing.jsonl")


def exported(snap: Snapshot) -> dict:
    collector = SnapshotCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    collector.update(snap)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_exporter_gauges_for_a_refusal_and_for_pg15():
    refused = exported(
        Snapshot(taken_at=WHEN, target="t", refused=Refusal("reserved_superuser", "m", "w"))
    )
    assert refused[("pgslots_up", ())] == 0
    assert refused[("pgslots_refused", (("category", "reserved_superuser"),))] == 1
    assert ("pgslots_max_connections", ()) not in refused
    pg15 = exported(
        snapshot(
            reserved_connections=None, backends=(BackendGroup("appdb", "app", None, None, None, 2),)
        )
    )
    assert pg15[("pgslots_reserved_connections", ())] == 0
    assert (
        pg15[
            (
                "pgslots_client_backends",
                (
                    ("application", "(hidden)"),
                    ("database", "appdb"),
                    ("state", "(hidden)"),
                    ("user", "app"),
                ),
            )
        ]
        == 2
    )


def test_terminal_view_and_summary_line():
    history = [snapshot(client_backends=n) for n in (40, 60, 91)] + [
        snapshot(unreachable="connection lost")
    ]
    latest = snapshot(backends=(BackendGroup("appdb", "app", "web", "10.0.0.7", "idle", 90),))
    console = Console(record=True, width=120, force_terminal=False)
    console.print(render_view(latest, [*history, latest], 0.2))
    text = console.export_text()
    assert "slots used 91 / 95 usable by app" in text
    assert "WARNING: headroom 4 is under 20% of the 95 usable slots" in text
    assert "history (5 snapshots" in text and "x" in text.splitlines()[-1]
    assert "web" in text and "90" in text
    assert sparkline([0, 50, 100, None], 100) == "▁▅█x"
    line = summary_line(latest, 0.2)
    assert (
        line.startswith("2026-05-11T22:27:00Z used 91/95 usable by app, headroom 4")
        and "WARNING" in line
    )
    assert json.loads(render_json(latest))["snapshot"]["headroom_for_role"] == 4


def test_pooler_rows_are_read_by_column_name():
    """Rows shaped like PgCat's and PgDog's SHOW POOLS (column names from their sources:
    pgcat src/stats/pool.rs generate_header, pgdog src/admin/show_pools.rs)."""
    from pgslots.live.pgbouncer import _pool, server_side_capacity

    pgcat = {
        "database": "appdb",
        "user": "app",
        "pool_mode": "transaction",
        "cl_idle": 4,
        "cl_active": 2,
        "cl_waiting": 3,
        "cl_cancel_req": 0,
        "sv_active": 2,
        "sv_idle": 0,
        "sv_used": 0,
        "sv_tested": 0,
        "sv_login": 0,
        "maxwait": 1,
        "maxwait_us": 500000,
    }
    pool = _pool(pgcat, (), {}, {"default_pool_size": "2"})
    assert (
        pool.cl_idle,
        pool.cl_active,
        pool.cl_waiting,
        pool.maxwait_seconds,
        pool.pool_size,
    ) == (4, 2, 3, 1.5, 2)
    pgdog = {
        "id": 1,
        "database": "appdb",
        "user": "app",
        "addr": "10.0.1.5",
        "port": 5432,
        "shard": 0,
        "role": "primary",
        "cl_waiting": 3,
        "sv_idle": 8,
        "sv_active": 12,
        "sv_idle_xact": 0,
        "sv_total": 20,
        "maxwait": 0,
        "maxwait_us": 250000,
        "pool_mode": "transaction",
        "paused": "f",
        "banned": "f",
    }
    pool = _pool(pgdog, (), {}, {})
    assert (
        pool.cl_active,
        pool.sv_used,
        pool.cl_waiting,
        pool.sv_active,
        pool.maxwait_seconds,
    ) == (None, None, 3, 12, 0.25)
    assert pool.pool_size is None and server_side_capacity((pool,), (), {}, {})[0] is None
