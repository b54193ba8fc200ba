"""`--postgres-bin`: the baseline on the system's PostgreSQL (15 on Debian), where the
reserved-slot wording is the pre-16 "non-replication superuser connections"."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import pgslots.cli.events
import pgslots.cli.lab  # noqa: F401 - registers `lab`
from conftest import require
from pgslots.cli import app
from pgslots.lab.postgres import system_binaries

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_baseline_on_system_postgres(tmp_path):
    found = [b for b in system_binaries() if b.major < 16]
    require(bool(found), "a system PostgreSQL older than 16")
    result = CliRunner().invoke(
        app,
        [
            "lab",
            "--scenario",
            "baseline",
            "--duration",
            "0.5",
            "--postgres-bin",
            str(found[0].bindir),
            "--out",
            str(tmp_path),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    baseline = report["scenarios"][0]
    assert baseline["postgres"].startswith("15")
    assert baseline["web_failed"] > 0
    assert baseline["errors_by_category"].get("reserved_superuser", 0) > 0
    nerdgraph = (tmp_path / "baseline" / "newrelic" / "nerdgraph.json").read_text()
    assert "reserved for non-replication superuser connections" in nerdgraph
    assert (tmp_path / "comparison.json").exists() and (tmp_path / "comparison.md").exists()
