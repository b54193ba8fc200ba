"""`diagnose --lab-run DIR`: each remedy's effect measured on a real reproduction, next to
the budget model's prediction."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "newrelic-incident.json"
REPO = ROOT / "tests" / "fixtures" / "repos" / "writeup"
LAB_RUN = ROOT / "tests" / "fixtures" / "lab-run"  # written by tests/fixtures/make_lab_run.py


def pgslots(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args], capture_output=True, text=True, timeout=timeout
    )


def diagnose_json(*args: str) -> dict:
    result = pgslots("diagnose", *args, "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def baseline_failures(run: Path) -> int:
    data = json.loads((run / "comparison.json").read_text())
    return next(s["web_failed"] for s in data["scenarios"] if s["scenario"] == "baseline")


def test_measured_effects_join_the_ranked_remedies():
    report = diagnose_json(
        "--events",
        str(EXAMPLE),
        "--repo",
        str(REPO),
        "--assume",
        "django.hosts=16",
        "--lab-run",
        str(LAB_RUN),
    )
    remedies = {r["code"]: r for r in report["remedies"]}
    base = baseline_failures(LAB_RUN)
    assert base > 0, "the fixture's baseline reproduces the failures"
    r01 = remedies["R01"]["measured"]
    assert r01["scenario"] == "conn-max-age-0" and r01["baseline_failed_requests"] == base
    assert r01["failed_requests"] < base
    assert remedies["R02"]["measured"]["scenario"] == "limit-concurrency"
    assert remedies["R04"]["measured"] is None  # not in this run
    assert [s["name"] for s in report["lab"]["scenarios"]] == [
        "baseline",
        "conn-max-age-0",
        "limit-concurrency",
    ]
    verdicts = {a["code"]: a["verdict"] for a in report["assessments"]}
    assert "no improvement" not in verdicts["R01"]


def test_markdown_shows_the_lab_table_and_html_the_lab_panel(tmp_path: Path):
    args = (
        "diagnose",
        "--events",
        str(EXAMPLE),
        "--repo",
        str(REPO),
        "--lab-run",
        str(LAB_RUN),
        "--fail-on",
        "never",
    )
    markdown = pgslots(*args, "--format", "markdown").stdout
    assert "Measured in the lab run" in markdown and "| `conn-max-age-0` | R01 |" in markdown
    assert "Measured in the lab (`conn-max-age-0`)" in markdown
    assert "x 503" in markdown  # limit-concurrency answers 503 beyond its limit, by design
    out = tmp_path / "r.html"
    assert pgslots(*args, "--format", "html", "-o", str(out)).returncode == 0
    html = out.read_text()
    assert (
        "measured in the lab (at its own scale)" in html
        and "failed requests in the lab run" in html
    )


def test_a_remedy_that_did_not_help_is_a_finding(tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(LAB_RUN, run)
    data = json.loads((run / "comparison.json").read_text())
    base = baseline_failures(run)
    for scenario in data["scenarios"]:
        if scenario["scenario"] == "limit-concurrency":
            scenario["web_failed"] = base + 5
    (run / "comparison.json").write_text(json.dumps(data))
    report = diagnose_json("--repo", str(REPO), "--lab-run", str(run))
    (finding,) = [f for f in report["findings"] if f["code"] == "PGS412"]
    assert finding["message"].startswith("R02:")
    verdicts = {a["code"]: a["verdict"] for a in report["assessments"]}
    assert "the lab measured no improvement" in verdicts["R02"]


def test_a_directory_that_is_no_lab_run_is_a_note(tmp_path: Path):
    report = diagnose_json("--repo", str(REPO), "--lab-run", str(tmp_path))
    status = {s["kind"]: s for s in report["inputs"]}["lab-run"]
    assert status["given"] and not status["ok"] and "no measured scenario" in status["detail"]
    assert report["topology"] is not None


@pytest.mark.slow
def test_a_real_lab_run_is_read(tmp_path: Path):
    """The lab's output format, as the lab writes it today (the fixture could go stale)."""
    run = tmp_path / "run"
    lab = pgslots(
        "lab",
        "--scenario",
        "baseline,conn-max-age-0",
        "--duration",
        "0.4",
        "--out",
        str(run),
        timeout=400,
    )
    assert lab.returncode == 0, lab.stderr
    report = diagnose_json("--repo", str(REPO), "--lab-run", str(run))
    measured = {r["code"]: r["measured"] for r in report["remedies"]}["R01"]
    assert measured["scenario"] == "conn-max-age-0"
    assert measured["baseline_failed_requests"] == baseline_failures(run)
    assert report["lab"]["usable"] is not None
