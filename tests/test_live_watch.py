"""`pgslots watch` against a real server: one connection for every snapshot, reconnect with
backoff, refusals recorded, JSON Lines records, the Prometheus endpoint scraped over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import sigint_as_on_a_terminal
from live_support import held, make_roles, pgslots, probe_connections_in_log, wait_for
from pgslots.lab.postgres import free_port
from pgslots.live.connect import ConnectFailure, ConnectSettings
from pgslots.live.probe import ProbeRequest
from pgslots.live.record import Recorder, read_records
from pgslots.live.snapshot import SnapshotOptions
from pgslots.live.watch import Watcher

pytestmark = pytest.mark.postgres


def request_for(server, user="mon", app_role="app"):
    return ProbeRequest(
        ConnectSettings(server.dsn(user)), options=SnapshotOptions(app_role=app_role)
    )


def test_every_snapshot_uses_the_same_single_connection(pg_binaries, start_postgres):
    server = start_postgres(pg_binaries, settings={"max_connections": 20})
    make_roles(server)
    before = probe_connections_in_log(server)
    snapshots, probes_seen = [], []
    with held() as clients:

        def on_snapshot(snapshot):
            snapshots.append(snapshot)
            probes_seen.append(
                server.execute(
                    "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'pgslots'"
                )[0][0]
            )
            clients.open(server, "app", "postgres", "web")  # the next snapshot must see one more

        taken = Watcher(request_for(server), interval=0.05).run(on_snapshot, count=4)
    assert taken == 4 and probes_seen == [1, 1, 1, 1]
    assert len({s.own_pid for s in snapshots}) == 1
    assert [s.client_backends for s in snapshots] == [1, 2, 3, 4]
    assert [s.role.connections for s in snapshots] == [0, 1, 2, 3]
    assert wait_for(lambda: probe_connections_in_log(server) - before == 1)


def test_reconnects_with_backoff_after_the_connection_drops(embedded_pg, start_postgres):
    server = start_postgres(embedded_pg, settings={"max_connections": 20})
    make_roles(server)
    watcher = Watcher(request_for(server), interval=0.5)
    snapshots, delays = [], []

    def on_snapshot(snapshot):
        snapshots.append(snapshot)
        if len(snapshots) == 1:
            server.execute(
                "SELECT pg_terminate_backend(%s, 5000)", (snapshot.own_pid,)
            )  # waits for it

    watcher.run(on_snapshot, count=3, sleep=delays.append)
    first, gap, back = snapshots
    assert first.ok and not gap.ok and back.ok
    assert (
        gap.unreachable.startswith("connection lost")
        and "terminating connection" in gap.unreachable
    )
    assert back.own_pid != first.own_pid and watcher.connections_opened == 2
    assert len(delays) == 2 and delays[0] <= 0.5 and 0.4 < delays[1] <= 0.5


def test_refusals_are_recorded_and_backoff_doubles(embedded_pg, start_postgres, tmp_path):
    server = start_postgres(
        embedded_pg, settings={"max_connections": 6, "superuser_reserved_connections": 2}
    )
    make_roles(server)
    record = tmp_path / "slots.jsonl"
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=4)
        snapshots, delays = [], []
        watcher = Watcher(request_for(server, user="app"), interval=1.0)

        def on_snapshot(snapshot):
            snapshots.append(snapshot)
            recorder.write(snapshot)
            if len(snapshots) == 3:
                clients.connections.pop().close()
                # A backend leaves asynchronously; the watch does not really sleep here.
                wait_for(lambda: server.client_backends() == 3)

        with Recorder(record) as recorder:
            watcher.run(on_snapshot, count=4, sleep=delays.append)
    assert [s.refused.category if s.refused else "ok" for s in snapshots] == [
        "reserved_superuser",
        "reserved_superuser",
        "reserved_superuser",
        "ok",
    ]
    assert [round(d) for d in delays] == [1, 2, 4]
    assert snapshots[-1].client_backends == 4
    # The record file reads back, refusals included; a torn last line is skipped and reported.
    with record.open("a") as handle:
        handle.write('{"taken_at": "2026-')
    skipped = []
    records = read_records(record, on_skip=lambda line, reason: skipped.append(line))
    assert records == snapshots and skipped == [5]


def test_a_first_connection_that_cannot_work_stops_the_watch(embedded_pg, start_postgres):
    server = start_postgres(embedded_pg)
    bad = ProbeRequest(
        ConnectSettings(f"host=127.0.0.1 port={free_port()} user=postgres", connect_timeout=2)
    )
    with pytest.raises(ConnectFailure) as failure:
        Watcher(bad, interval=0.1).run(lambda s: None, count=2)
    assert failure.value.kind == "unreachable"
    result = pgslots("watch", server.dsn(user="nosuchrole"), "--count", "1")
    assert result.returncode == 2 and 'role "nosuchrole" does not exist' in result.stderr


def test_watch_cli_lines_in_a_pipe_and_record_file(embedded_pg, start_postgres, tmp_path):
    server = start_postgres(embedded_pg, settings={"max_connections": 10})
    make_roles(server)
    record = tmp_path / "r.jsonl"
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=6)
        result = pgslots(
            "watch",
            server.dsn("mon"),
            "--app-role",
            "app",
            "--count",
            "2",
            "--interval",
            "0.2",
            "--record",
            str(record),
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(
        "used 7/7 usable by app, headroom 0" in line and "WARNING headroom under 20%" in line
        for line in lines
    )
    records = read_records(record)
    assert len(records) == 2 and records[0].own_pid == records[1].own_pid
    as_json = pgslots("watch", server.dsn("mon"), "--count", "1", "--format", "json")
    assert json.loads(as_json.stdout)["snapshot"]["client_backends"] == 1


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def web_idle(samples):
    key = (
        "pgslots_client_backends",
        (("application", "web"), ("database", "postgres"), ("state", "idle"), ("user", "app")),
    )
    return samples.get(key, 0)


def test_prometheus_endpoint_follows_the_connections_within_one_interval(
    pg_binaries, start_postgres
):
    server = start_postgres(
        pg_binaries, settings={"max_connections": 30, "superuser_reserved_connections": 4}
    )
    make_roles(server)
    port = free_port()
    interval = 1.0
    with held() as clients:
        clients.open(server, "app", "postgres", "web", n=2)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgslots",
                "watch",
                server.dsn("mon"),
                "--app-role",
                "app",
                "--interval",
                str(interval),
                "--prometheus",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_as_on_a_terminal,
        )
        try:
            first = wait_for(lambda: _try_scrape(port), timeout=20)
            assert first[("pgslots_max_connections", ())] == 30
            assert first[("pgslots_superuser_reserved_connections", ())] == 4
            assert first[("pgslots_reserved_connections", ())] == 0
            assert first[("pgslots_usable_connections", (("role", "app"),))] == 26
            assert first[("pgslots_up", ())] == 1
            assert web_idle(first) == 2
            total = first[("pgslots_client_backends_total", ())]
            assert (
                total == 3 and first[("pgslots_headroom_connections", (("role", "app"),))] == 26 - 3
            )
            clients.open(server, "app", "postgres", "web", n=3)
            changed_at = time.monotonic()

            def five_web() -> dict | None:
                samples = scrape(port)
                return samples if web_idle(samples) == 5 else None

            after = wait_for(five_web, timeout=5, step=0.05)
            assert (
                time.monotonic() - changed_at <= interval + 0.5
            )  # the next snapshot, plus a scrape on a busy box
            assert after[("pgslots_client_backends_total", ())] == 6
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"serving metrics on http://127.0.0.1:{port}/metrics" in err
    assert len(out.splitlines()) >= 2  # one line per snapshot in a pipe


def _try_scrape(port):
    try:
        samples = scrape(port)
    except OSError:
        return None
    return samples if ("pgslots_max_connections", ()) in samples else None


@pytest.mark.postgres
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_watch_stops_cleanly_on_ctrl_c_and_sigterm(embedded_pg, start_postgres, tmp_path, signum):
    """Ctrl-C at a terminal or SIGTERM from a service manager: exit 0, the record complete."""
    server = start_postgres(embedded_pg)
    record = tmp_path / "watch.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgslots",
            "watch",
            server.dsn(),
            "--interval",
            "0.2",
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_on_a_terminal,
    )
    try:
        wait_for(lambda: record.exists() and len(record.read_text().splitlines()) >= 2, timeout=20)
    finally:
        process.send_signal(signum)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    snapshots = read_records(record)
    assert len(snapshots) >= 2 and all(s.max_connections for s in snapshots)
