"""Snapshot latency at 500 client backends, and the probe's own connection count.

Starts a throwaway PostgreSQL (embedded PG18 by default; `--postgres-bin` for another) with
max_connections=600, opens 500 real client connections from this process (several roles and
application names, some idle in transaction), then measures:

* `take_snapshot` on one open connection (what every `watch` iteration costs): median, p95
  and max wall time, and the server-side query time the snapshot records;
* a whole `probe()` (connect + snapshot + close) and the `pgslots probe` command line, with the
  command's peak RSS;
* the peers, in the same run: `psql -c "SELECT count(*) FROM pg_stat_activity"` (connect +
  one count, what people type by hand) and the naive client-side grouping (fetch every row of
  pg_stat_activity, group in Python);
* the probe's own connections: during a 20-snapshot watch, a second superuser session counts
  `application_name = 'pgslots'` backends each time, and the server log counts the
  connections pgslots opened. Both must be 1.

Run by hand: `.venv/bin/python bench/probe_latency.py [--backends 500] [--snapshots 50]`.
Target: snapshot latency under 100 ms at 500 client backends.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from pgslots.lab.postgres import TempPostgres, binaries_at, default_binaries
from pgslots.live.connect import ConnectSettings, connect
from pgslots.live.probe import ProbeRequest, probe
from pgslots.live.snapshot import SnapshotOptions, take_snapshot
from pgslots.live.watch import Watcher

ROLES = ("app", "celery", "reporting", "mon")
APPLICATIONS = ("web", "celery-worker", "beat", "metabase", "")


def open_clients(server: TempPostgres, n: int) -> list[psycopg.Connection]:
    clients = []
    for i in range(n):
        role = ROLES[i % 3]
        conn = server.connect(
            role, "appdb", application_name=f"{APPLICATIONS[i % len(APPLICATIONS)]}-{i % 7}"
        )
        if i % 25 == 0:
            conn.execute("BEGIN")
            conn.execute("SELECT 1")
        clients.append(conn)
    return clients


def timings(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):7.2f} ms  p95 {p95:7.2f} ms  max {ordered[-1]:7.2f} ms"
    )


def naive_snapshot(conn: psycopg.Connection) -> Counter:
    rows = conn.execute("SELECT * FROM pg_stat_activity").fetchall()
    names = [c.name for c in conn.execute("SELECT * FROM pg_stat_activity LIMIT 0").description]
    index = {name: i for i, name in enumerate(names)}
    return Counter(
        (r[index["datname"]], r[index["usename"]], r[index["application_name"]], r[index["state"]])
        for r in rows
        if r[index["backend_type"]] == "client backend"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=int, default=500)
    parser.add_argument("--snapshots", type=int, default=50)
    parser.add_argument("--postgres-bin", type=Path)
    args = parser.parse_args()
    binaries = binaries_at(args.postgres_bin) if args.postgres_bin else default_binaries()
    settings = {"max_connections": args.backends + 100, "superuser_reserved_connections": 3}
    if binaries.major >= 16:
        settings["reserved_connections"] = 5
    print(f"server: {binaries}, max_connections={settings['max_connections']}")
    with TempPostgres(binaries, settings=settings) as server:
        server.create_database("appdb")
        for role in ROLES:
            server.create_role(role, member_of=("pg_monitor",) if role == "mon" else ())
        started = time.perf_counter()
        clients = open_clients(server, args.backends)
        print(
            f"opened {len(clients)} client connections in {time.perf_counter() - started:.1f} s; "
            f"server counts {server.client_backends()} client backends"
        )
        try:
            request = ProbeRequest(
                ConnectSettings(server.dsn("mon", "appdb")), options=SnapshotOptions(app_role="app")
            )
            conn = connect(request.server)
            walls, queries = [], []
            for _ in range(args.snapshots):
                t0 = time.perf_counter()
                snapshot = take_snapshot(conn, request.server.target, request.options)
                walls.append((time.perf_counter() - t0) * 1000)
                queries.append(snapshot.query_ms or 0.0)
            conn.close()
            print(
                f"\nsnapshot on an open connection ({args.snapshots}x, {snapshot.client_backends} client backends, "
                f"{len(snapshot.backends)} groups):"
            )
            print(f"  wall            {timings(walls)}")
            print(f"  queries         {timings(queries)}")
            target_ok = statistics.median(walls) < 100
            print(f"  target < 100 ms: {'met' if target_ok else 'MISSED'}")

            probe_walls = []
            for _ in range(10):
                t0 = time.perf_counter()
                probe(request)
                probe_walls.append((time.perf_counter() - t0) * 1000)
            print(f"probe() connect+snapshot+close (10x)   {timings(probe_walls)}")

            cli_walls = []
            for _ in range(5):
                t0 = time.perf_counter()
                result = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pgslots",
                        "probe",
                        server.dsn("mon", "appdb"),
                        "--app-role",
                        "app",
                        "--format",
                        "json",
                        "--fail-on",
                        "never",
                    ],
                    capture_output=True,
                    text=True,
                )
                cli_walls.append((time.perf_counter() - t0) * 1000)
                assert result.returncode == 0, result.stderr
            rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"pgslots probe CLI (5x, incl. Python start) {timings(cli_walls)}  peak RSS {rss_mb:.0f} MB"
            )

            naive_walls = []
            with psycopg.connect(server.dsn("mon", "appdb")) as peer:
                for _ in range(args.snapshots):
                    t0 = time.perf_counter()
                    naive_snapshot(peer)
                    naive_walls.append((time.perf_counter() - t0) * 1000)
            print(
                f"\npeer: naive client-side grouping ({args.snapshots}x) {timings(naive_walls)}  "
                f"ratio pgslots/naive {statistics.median(walls) / statistics.median(naive_walls):.2f}"
            )
            psql = (
                shutil.which("psql")
                or str(next(iter(Path("/usr/lib/postgresql").glob("*/bin/psql")), ""))
                or None
            )
            if psql:
                psql_walls = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    subprocess.run(
                        [
                            psql,
                            server.dsn("mon", "appdb"),
                            "-Atc",
                            "SELECT count(*) FROM pg_stat_activity",
                        ],
                        capture_output=True,
                        check=True,
                    )
                    psql_walls.append((time.perf_counter() - t0) * 1000)
                print(
                    f"peer: psql -c 'SELECT count(*) FROM pg_stat_activity' (5x) {timings(psql_walls)}  "
                    f"ratio pgslots CLI/psql {statistics.median(cli_walls) / statistics.median(psql_walls):.1f}"
                )

            log_before = _pgslots_connections_in_log(server)
            seen: list[int] = []

            def count_probes(_snapshot) -> None:
                seen.append(
                    server.execute(
                        "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'pgslots'"
                    )[0][0]
                )

            Watcher(request, interval=0.05).run(count_probes, count=20)
            time.sleep(0.5)  # let the logging collector write
            opened = _pgslots_connections_in_log(server) - log_before
            print(
                f"\nprobe's own connections during a 20-snapshot watch: max {max(seen)} seen from a second "
                f"session, {opened} opened per the server log (must be 1 and 1)"
            )
            return 0 if target_ok and max(seen) == 1 and opened == 1 else 1
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    client.close()


def _pgslots_connections_in_log(server: TempPostgres) -> int:
    text = server.logs.stderr.read_text(errors="replace")
    return sum(
        1
        for line in text.splitlines()
        if "connection authorized:" in line and "application_name=pgslots" in line
    )


if __name__ == "__main__":
    sys.exit(main())
