"""`pgslots diagnose` from the command line, on saved JSON outputs of the other commands:
each input optional, bad ones noted (not a crash), usage errors one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pgslots.cli.diagnose  # noqa: F401
from diagnose_samples import at, incident
from pgslots.cli import app, main  # noqa: F401 - registers the commands
from pgslots.live.model import RoleInfo, Snapshot
from pgslots.serde import to_jsonable


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["diagnose", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def incident_json(tmp_path: Path) -> Path:
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(to_jsonable(incident())))
    return path


def snapshots(n: int = 6) -> list[Snapshot]:
    return [
        Snapshot(
            taken_at=at(22, 25 + i),
            target="host=db user=app password=****",
            server_version="15.8",
            max_connections=100,
            superuser_reserved_connections=3,
            role=RoleInfo("app", False, None, None),
            usable_for_role=97,
            client_backends=80 + 3 * i,
        )
        for i in range(n)
    ]


@pytest.fixture
def watch_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "watch.jsonl"
    lines = [json.dumps(to_jsonable(s)) for s in snapshots()]
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_events_alone_are_useful_and_list_what_else_would_help(incident_json: Path):
    code, out, _ = run("--events", str(incident_json))
    assert code == 0
    assert "440" in out and "4 → 152 → 284" in out
    assert "--repo PATH would add" in out and "--dsn DSN would add" in out
    assert "--lab-run DIR" in out


def test_watch_record_alone_gives_the_peak_and_skips_bad_lines(watch_jsonl: Path):
    code, out, _ = run("--watch-record", str(watch_jsonl), "--format", "markdown")
    assert code == 0
    assert "Observed peak: **95** client backends" in out
    assert "1 malformed lines skipped" in out
    assert "Usable slots for the application role: **97**" in out
    assert "--events FILE" in out


def test_a_bad_input_beside_a_good_one_is_a_note(incident_json: Path, tmp_path: Path):
    missing = tmp_path / "nope.jsonl"
    code, out, _ = run(
        "--events", str(incident_json), "--watch-record", str(missing), "--format", "markdown"
    )
    assert code == 0
    assert "| watch-record | given, not usable |" in out
    assert "PGS409" in out and "nope.jsonl" in out


def test_probe_json_is_accepted_as_a_record_of_one_moment(incident_json: Path, tmp_path: Path):
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps(to_jsonable(snapshots(1)[0])))
    code, out, _ = run("--events", str(incident_json), "--watch-record", str(probe), "-f", "json")
    data = json.loads(out)
    assert code == 0
    assert data["capacity"]["usable"] == 97 and data["snapshot"]["server_version"] == "15.8"
    assert "password=****" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), "nothing to diagnose"),
        (("--events", "/nonexistent/x.json", "--assume", "web.hosts"), "expected NAME=VALUE"),
        (("--events", "/nonexistent/x.json", "--assume", "web.hosts=many"), "whole number"),
        (("--watch-record", "/nonexistent/w.jsonl"), "no input could be used"),
        (("--events", "x", "--format", "sarif"), "is not one of"),
        (("--events", "x", "--tz", "Mars/Olympus"), "not a time zone"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], expected: str):
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", "diagnose", *args], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_fail_on_sets_the_exit_code(incident_json: Path, watch_jsonl: Path):
    code, _, _ = run(
        "--events", str(incident_json), "--watch-record", str(watch_jsonl), "--fail-on", "info"
    )
    assert code == 1
    code, _, _ = run("--events", str(incident_json), "--watch-record", str(watch_jsonl))
    assert code == 0


def test_html_output_file(incident_json: Path, tmp_path: Path):
    out = tmp_path / "r.html"
    code, _, _ = run("--events", str(incident_json), "--format", "html", "--output", str(out))
    html = out.read_text()
    assert (
        code == 0 and html.startswith("<!DOCTYPE html>") and 'data-chart="errors-over-time"' in html
    )
