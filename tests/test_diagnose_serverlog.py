"""`diagnose --events <server log>`: a real PostgreSQL's own log of an exhaustion gives the
client backends over time, and the peak is read against the usable slots."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent / "fixtures" / "repos" / "writeup"

pytestmark = pytest.mark.postgres


def exhaust(server, app_connections: int, refused: int) -> None:
    held = [psycopg.connect(server.dsn(user="app")) for _ in range(app_connections)]
    try:
        for _ in range(refused):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(server.dsn(user="app"))
    finally:
        for conn in held:
            conn.close()


def test_server_log_backends_against_the_usable_slots(pg_binaries, start_postgres, tmp_path: Path):
    server = start_postgres(
        pg_binaries, settings={"max_connections": 6, "superuser_reserved_connections": 3}
    )
    server.create_role("app")
    exhaust(server, app_connections=3, refused=4)
    time.sleep(0.3)  # let the logging collector write
    log = tmp_path / "postgresql.log"
    log.write_bytes(server.logs.stderr.read_bytes())

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgslots",
            "diagnose",
            "--events",
            str(log),
            "--repo",
            str(REPO),
            "--assume",
            "server.max_connections=6",
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["incident"]["by_category"]["reserved_superuser"] == 4
    (series,) = [s for s in report["backends"] if s["source"] == "server log"]
    assert series["peak"] >= 3 and series["points"]  # one point per bucket of the incident
    cap = report["capacity"]
    assert cap["usable"] == 3 and not cap["usable_assumed"]
    assert cap["observed_peak"] == series["peak"]
    assert "PGS403" in {f["code"] for f in report["findings"]}
    items = {i["key"]: i for i in report["verification"]}
    assert items["peak"]["answer"] == str(series["peak"])
    generation = "15 or older" if pg_binaries.major < 16 else "16 or newer"
    assert (
        generation in items["server_version"]["answer"]
        or str(pg_binaries.major) in items["server_version"]["answer"]
    )
