"""`diagnose --dsn` against real PostgreSQL servers: the live settings replace the defaults,
a full server's refusal is evidence, an unreachable DSN is a note, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

import pgslots.cli.diagnose  # noqa: F401 - registers the command
from conftest import require_tool
from pgslots.cli import app
from pgslots.lab.pgbouncer import TempPgbouncer
from pgslots.lab.postgres import free_port

pytestmark = pytest.mark.postgres


def diagnose(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["diagnose", *args, "--format", "json", "--fail-on", "never"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "newrelic-incident.json"


@pytest.fixture
def incident_file() -> Path:
    """The write-up's incident as New Relic's NerdGraph export, read by the events pipeline."""
    return EXAMPLE


def statuses(report: dict) -> dict[str, dict]:
    return {s["kind"]: s for s in report["inputs"]}


def test_live_settings_replace_the_defaults(pg_binaries, start_postgres, incident_file: Path):
    server = start_postgres(
        pg_binaries, settings={"max_connections": 23, "superuser_reserved_connections": 2}
    )
    server.create_role("app", password="s3cret-pw")
    held = [
        psycopg.connect(server.dsn(user="app", password="s3cret-pw", dbname="postgres"))
        for _ in range(4)
    ]
    try:
        _, report = diagnose(
            "--events", str(incident_file), "--dsn", server.dsn(user="app", password="s3cret-pw")
        )
    finally:
        for conn in held:
            conn.close()
    assert statuses(report)["dsn"]["ok"]
    assert report["capacity"]["max_connections"] == 23
    assert report["capacity"]["usable"] == 21 and not report["capacity"]["usable_assumed"]
    assert report["snapshot"]["role"]["is_superuser"] is False
    assert report["snapshot"]["client_backends"] >= 5  # the four held and the probe itself
    items = {i["key"]: i for i in report["verification"]}
    assert items["server_settings"]["answer"].startswith(
        "max_connections 23, superuser_reserved_connections 2"
    )
    assert items["server_version"]["answer"].split(".")[0] == str(pg_binaries.major)
    assert items["role"]["answer"] == "no"
    assert "s3cret-pw" not in json.dumps(report)
    if (
        pg_binaries.major >= 16
    ):  # the events carry the pre-16 wording: another server, or an upgrade since
        assert "PGS407" in {f["code"] for f in report["findings"]}


def test_a_full_server_refusing_the_probe_is_evidence(
    embedded_pg, start_postgres, incident_file: Path
):
    server = start_postgres(
        embedded_pg, settings={"max_connections": 5, "superuser_reserved_connections": 2}
    )
    server.create_role("app")
    held = [psycopg.connect(server.dsn(user="app")) for _ in range(3)]
    try:
        _, report = diagnose("--events", str(incident_file), "--dsn", server.dsn(user="app"))
    finally:
        for conn in held:
            conn.close()
    status = statuses(report)["dsn"]
    assert status["ok"] and "refused the probe" in status["detail"]
    assert report["snapshot"]["refused"]["category"] == "reserved_superuser"
    assert any("The probe was refused" in note for note in report["notes"])


def test_a_dsn_that_refuses_the_connection_is_a_note(incident_file: Path):
    port = free_port()  # nothing listens there
    _, report = diagnose(
        "--events",
        str(incident_file),
        "--dsn",
        f"host=127.0.0.1 port={port} user=app connect_timeout=2",
    )
    status = statuses(report)["dsn"]
    assert status["given"] and not status["ok"]
    assert str(port) in status["detail"]
    assert "PGS409" in {f["code"] for f in report["findings"]}
    assert report["incident"]["total"] == 440  # the rest of the report is intact


@pytest.mark.pgbouncer
def test_pgbouncer_with_and_without_the_server(embedded_pg, start_postgres, incident_file: Path):
    require_tool("pgbouncer")
    server = start_postgres(
        embedded_pg, settings={"max_connections": 10, "superuser_reserved_connections": 3}
    )
    for role in ("app", "mon"):
        server.create_role(role)
    server.create_database("appdb")
    with TempPgbouncer(
        server, {"appdb": "appdb"}, settings={"default_pool_size": 5}, users=("app", "mon")
    ) as bouncer:
        for user in ("app", "mon"):
            with psycopg.connect(
                bouncer.dsn("appdb", user), autocommit=True, prepare_threshold=None
            ) as conn:
                conn.execute("SELECT 1")
        _, both = diagnose(
            "--events",
            str(incident_file),
            "--dsn",
            server.dsn(user="app"),
            "--pgbouncer",
            bouncer.admin_dsn(),
        )
        _, alone = diagnose("--events", str(incident_file), "--pgbouncer", bouncer.admin_dsn())
        markdown = (
            CliRunner()
            .invoke(
                app,
                [
                    "diagnose",
                    "--events",
                    str(incident_file),
                    "--pgbouncer",
                    bouncer.admin_dsn(),
                    "--format",
                    "markdown",
                    "--fail-on",
                    "never",
                ],
            )
            .stdout
        )
    assert both["snapshot"]["pgbouncer"]["server_side_capacity"] == 10
    assert "PGS209" in {f["code"] for f in both["findings"]}  # pools may open 10 > 7 usable
    assert statuses(alone)["pgbouncer"]["ok"] and not statuses(alone)["dsn"]["given"]
    assert alone["snapshot"]["pgbouncer"]["server_side_capacity"] == 10
    assert "it may open **10** server connections" in markdown
