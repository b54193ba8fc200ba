"""The output contract every command keeps: one JSON envelope that validates against the schema
shipped in the package, --help that lists exactly the formats a command writes, exit codes
from one table, text fitted to the terminal's width, and a quiet exit on a closed pipe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from live_support import make_roles
from pgslots.envelope import COMMANDS, SCHEMA, json_schema
from pgslots.lab import render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "newrelic-incident.json"
REPOS = ROOT / "tests" / "fixtures" / "repos"
WRITEUP = REPOS / "writeup"
LAB_RUN = ROOT / "tests" / "fixtures" / "lab-run" / "comparison.json"

VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def pgslots(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def valid(document: dict, command: str) -> dict:
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert not errors, errors[:5]
    assert document["schema"] == SCHEMA and document["command"] == command
    return document


def json_of(*args: str) -> dict:
    result = pgslots(*args, "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


class StoredResult:
    """A scenario result as the lab wrote it (the fixture predates some newer fields)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def to_json(self) -> dict:
        return self.data


def test_the_shipped_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_events_json_validates_and_carries_its_findings():
    document = valid(json_of("events", str(EXAMPLE)), "events")
    assert {f["code"] for f in document["findings"]} >= {"PGS101", "PGS104"}
    assert document["total"] == 440


def audited_fixtures() -> list[str]:
    """Fixture trees the audit reads (not those it must refuse, nor multi-project trees)."""
    names = []
    for path in sorted(p for p in REPOS.iterdir() if (p / "expected.yaml").is_file()):
        expected = yaml.safe_load((path / "expected.yaml").read_text()) or {}
        if "refused" not in expected and "projects" not in expected:
            names.append(path.name)
    return names


@pytest.mark.parametrize("repo", audited_fixtures())
def test_audit_json_validates_on_every_fixture_repository(repo: str):
    valid(json_of("audit", str(REPOS / repo)), "audit")


def test_diagnose_and_codes_json_validate():
    valid(json_of("diagnose", "--events", str(EXAMPLE), "--repo", str(WRITEUP)), "diagnose")
    codes = valid(json_of("codes"), "codes")
    assert len(codes["codes"]) == len({c["code"] for c in codes["codes"]}) > 40


def test_lab_and_demo_json_validate_on_a_real_runs_results():
    """What `pgslots lab/demo --format json` print for a real lab run's measured results
    (the CLI calls the same renderer with the run's own results)."""
    stored = json.loads(LAB_RUN.read_text())
    results = [StoredResult(s) for s in stored["scenarios"]]
    assert any("web_failed" in s for s in stored["scenarios"])
    meta = {"postgres": "(fixture)", "scale": 1.0}
    valid(json.loads(render.to_json(results, meta)), "lab")
    valid(json.loads(render.to_json(results, {**meta, "fixed_by": []}, command="demo")), "demo")


@pytest.mark.postgres
def test_probe_and_watch_json_validate_against_a_real_server(embedded_pg, start_postgres):
    server = start_postgres(embedded_pg, settings={"max_connections": 10})
    make_roles(server)
    valid(json_of("probe", server.dsn("mon"), "--app-role", "app"), "probe")
    result = pgslots(
        "watch", server.dsn("mon"), "--count", "2", "--interval", "0.2", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        valid(json.loads(line), "watch")


def test_every_command_writes_the_envelope_it_declares():
    assert set(COMMANDS) == {
        "events",
        "audit",
        "probe",
        "watch",
        "lab",
        "demo",
        "diagnose",
        "codes",
    }


FORMATS = {
    "events": {"text", "json", "markdown"},
    "audit": {"text", "json", "markdown", "sarif"},
    "diagnose": {"text", "json", "markdown", "html"},
    "probe": {"text", "json", "markdown"},
    "watch": {"text", "json"},
    "lab": {"text", "json", "markdown"},
    "demo": {"text", "json"},
    "codes": {"text", "json", "markdown"},
}


@pytest.mark.parametrize("command", sorted(FORMATS))
def test_help_lists_exactly_the_formats_the_command_writes(command: str):
    result = pgslots(command, "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    listed = re.search(r"--format \[([a-z|]+)\]", result.stdout)
    assert listed, result.stdout
    assert set(listed.group(1).split("|")) == FORMATS[command]
    assert (
        "<bool>" not in result.stdout
        and "list[" not in result.stdout
        and "<str>" not in result.stdout
    )


@pytest.mark.parametrize("command", sorted(FORMATS))
def test_help_examples_paste_as_one_line_each(command: str):
    """An example is never wrapped by the help formatter: every line that starts with
    `pgslots` is a whole command (its quotes balance)."""
    result = pgslots(command, "--help", env={"COLUMNS": "60"})
    examples = [
        line.strip() for line in result.stdout.splitlines() if line.strip().startswith("pgslots ")
    ]
    assert examples, result.stdout
    for line in examples:
        assert line.count('"') % 2 == 0 and line.count("'") % 2 == 0, line


def test_a_format_the_command_does_not_write_is_one_line_and_exit_2():
    result = pgslots("events", str(EXAMPLE), "--format", "sarif")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pgslots: ")


def test_events_fail_on():
    assert pgslots("events", str(EXAMPLE)).returncode == 0  # reports, does not signal, by default
    assert pgslots("events", str(EXAMPLE), "--fail-on", "error").returncode == 1
    assert pgslots("events", str(EXAMPLE), "--fail-on", "error", "--format", "json").returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ("events", str(EXAMPLE)),
        ("audit", str(WRITEUP)),
        ("diagnose", "--events", str(EXAMPLE), "--repo", str(WRITEUP)),
        ("codes",),
    ],
    ids=["events", "audit", "diagnose", "codes"],
)
def test_text_fits_80_columns(args: tuple[str, ...]):
    result = pgslots(*args, env={"COLUMNS": "80"})
    assert result.returncode in (0, 1), result.stderr
    long_lines = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not long_lines, long_lines[:3]
    wide = pgslots(*args, env={"COLUMNS": "250"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 80  # the width is what changed it


def test_a_closed_pipe_ends_quietly_with_141():
    process = subprocess.Popen(
        [sys.executable, "-m", "pgslots", "audit", str(WRITEUP), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before anything is written
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert stderr == b""
