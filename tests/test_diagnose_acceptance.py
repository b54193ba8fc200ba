"""The issue's acceptance, end to end through the installed CLI: the write-up's incident as
New Relic exports (`tests/fixtures/newrelic/`, `examples/`) and a repository shaped like its
deployment (`tests/fixtures/repos/writeup`: gunicorn + UvicornWorker, CONN_MAX_AGE 60,
Celery prefork 16, Django 4.2, psycopg 3.1.9), read by the real events pipeline and audit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = [  # the NerdGraph response, then the UI export of the same events (last)
    ROOT / "examples" / "newrelic-incident.json",
    ROOT / "tests" / "fixtures" / "newrelic" / "incident-ui-export.csv",
]
REPO = ROOT / "tests" / "fixtures" / "repos" / "writeup"
CSRF = "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view"
CELERY = "OtherTransaction/Celery/ami.jobs.tasks.update_async_services_seen_for_pipelines"
VIEW = "WebTransaction/Function/ami.main.api.views:SourceImageViewSet.list"


def pgslots(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args], capture_output=True, text=True, timeout=180
    )


def diagnose_json(*args: str) -> dict:
    result = pgslots("diagnose", *args, "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def report() -> dict:
    return diagnose_json(
        "--events", str(EXPORTS[0]), "--repo", str(REPO), "--assume", "django.hosts=16"
    )


@pytest.mark.parametrize("export", EXPORTS, ids=lambda p: p.name)
def test_the_report_observes_the_write_ups_numbers(export: Path):
    report = diagnose_json("--events", str(export), "--repo", str(REPO))
    incident = report["incident"]
    assert incident["total"] == 440
    assert [b["total"] for b in incident["buckets"]] == [4, 152, 284]
    families = incident["by_combination"]
    assert (
        families["reserved_superuser"],
        families["too_many_clients"],
        families["too_many_clients+reserved_superuser"],
    ) == (402, 22, 15)
    assert {r["value"]: r["count"] for r in incident["facets"]["transaction"]} == {
        CSRF: 435,
        CELERY: 4,
        VIEW: 1,
    }


def test_events_map_to_the_audited_process_groups(report: dict):
    groups = {a["kind"]: a for a in report["attribution"]}
    web, worker = groups["web"], groups["worker"]
    assert web["group"] == "django" and web["audited"]
    assert web["before_view"] == 435  # the CsrfViewMiddleware.process_view events
    assert {t["transaction"]: t["count"] for t in web["transactions"]} == {CSRF: 435, VIEW: 1}
    assert worker["group"] == "celeryworker" and worker["count"] == 4 and worker["audited"]


def test_conn_max_age_60_is_already_set_leaks_under_asgi_and_is_not_proposed(report: dict):
    (persistent,) = [p for p in report["in_place"] if p["setting"] == "CONN_MAX_AGE=60"]
    assert persistent["evidence"][0]["path"] == "config/settings/production.py"
    assert "leaks under ASGI" in persistent["consequence"]
    for remedy in report["remedies"]:
        assert (
            "CONN_MAX_AGE=60" not in remedy["change"]
            and "CONN_MAX_AGE to 60" not in remedy["change"]
        )
    items = {i["key"]: i for i in report["verification"]}
    assert items["conn_max_age"]["answer"] == "60"
    assert items["conn_max_age"]["evidence"][0].startswith("config/settings/production.py:15")


def test_remaining_remedies_are_ranked_with_their_predicted_demand(report: dict):
    remedies = report["remedies"]
    assert len(remedies) >= 3
    effective = [
        r
        for r in remedies
        if "no change in the number"
        not in {a["code"]: a["verdict"] for a in report["assessments"]}[r["code"]]
    ]
    keys = [(r["effort"], r["risk"]) for r in effective]
    assert keys == sorted(keys), "ordered by effort, then risk"
    assert all(r["predicted"] is not None for r in remedies)
    assert remedies[0]["code"] == "R01"  # CONN_MAX_AGE=0 under ASGI: one line, no risk
    fits = {a["code"]: a["fits"] for a in report["assessments"]}
    assert (
        fits["R01"] is False
    )  # still unbounded: stopping the leak does not bound ASGI concurrency
    assert any(fits.values())


def test_markdown_is_an_issue_ready_write_up():
    result = pgslots(
        "diagnose",
        "--events",
        str(EXPORTS[0]),
        "--repo",
        str(REPO),
        "--assume",
        "django.hosts=16",
        "--format",
        "markdown",
    )
    assert result.returncode == 1  # error findings, the default --fail-on error
    text = result.stdout
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:6] == [
        "## Observation",
        "## Interpretation",
        "## Contributors (verified)",
        "## The connection budget",
        "## What we still need to verify",
        "## Directions (ordered by effort and risk)",
    ]
    for fragment in (
        "**440**",
        "| 22:22 | 4 |",
        "| 22:27 | 152 |",
        "| 22:32 | 284 |",
        "402 ×",
        "22 ×",
        "15 ×",
        "| 435 |",
        "django",
        "celeryworker",
        "`CONN_MAX_AGE=60`",
        "leaks under ASGI",
        "- [x] `CONN_MAX_AGE` in the production settings? **60** (config/settings/production.py:15",
    ):
        assert fragment in text, fragment
    directions = text.split("## Directions", 1)[1]
    assert "Predicted demand after it" in directions


def test_one_kind_of_input_alone_is_still_useful():
    repo_only = pgslots(
        "diagnose", "--repo", str(REPO), "--format", "markdown", "--fail-on", "never"
    )
    assert repo_only.returncode == 0, repo_only.stderr
    assert "PGS003" in repo_only.stdout and "R01" in repo_only.stdout
    assert "`--events FILE`" in repo_only.stdout and "`--dsn DSN`" in repo_only.stdout
    events_only = pgslots(
        "diagnose", "--events", str(EXPORTS[0]), "--format", "markdown", "--fail-on", "never"
    )
    assert events_only.returncode == 0
    assert "**440**" in events_only.stdout and "`--repo PATH` would add" in events_only.stdout


def test_a_repository_that_is_not_django_is_a_note(tmp_path: Path):
    (tmp_path / "package.json").write_text('{"name": "shop"}\n')
    (tmp_path / "index.js").write_text("console.log('hi')\n")
    report = diagnose_json("--events", str(EXPORTS[0]), "--repo", str(tmp_path))
    status = {s["kind"]: s for s in report["inputs"]}["repo"]
    assert status["given"] and not status["ok"] and "not a Django deployment" in status["detail"]
    assert report["topology"] is None and report["incident"]["total"] == 440
    assert "PGS409" in {f["code"] for f in report["findings"]}


def local_time_export(tmp_path: Path) -> Path:
    """The UI export as someone in New York would save it: wall-clock times without a zone."""
    import csv
    import datetime as dt
    import zoneinfo

    source = EXPORTS[-1].read_text(encoding="utf-8").splitlines(keepends=True)
    rows = list(csv.DictReader(source))
    new_york = zoneinfo.ZoneInfo("America/New_York")
    for row in rows:
        moment = dt.datetime.fromtimestamp(
            int(row["timestamp"]) / 1000, dt.timezone.utc
        ).astimezone(new_york)
        row["timestamp"] = moment.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    path = tmp_path / "export-local-time.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_events_from_another_time_zone_are_noted(tmp_path: Path):
    """Events written in New York time, read as UTC (no --tz), against a watch record taken in
    UTC during the incident: the windows are 4 hours apart and the report says so."""
    watch = tmp_path / "watch.jsonl"
    lines = []
    for minute in range(22, 37):
        lines.append(
            json.dumps(
                {
                    "taken_at": f"2026-05-11T22:{minute:02d}:00Z",
                    "target": "host=db",
                    "max_connections": 100,
                    "superuser_reserved_connections": 3,
                    "client_backends": 60 + minute,
                }
            )
        )
    watch.write_text("\n".join(lines) + "\n")
    report = diagnose_json(
        "--events", str(local_time_export(tmp_path)), "--watch-record", str(watch)
    )
    codes = {f["code"]: f for f in report["findings"]}
    assert report["incident"]["total"] == 440
    assert report["incident"]["window_start"].startswith("2026-05-11T18:22")
    assert "PGS408" in codes and "4 h apart" in codes["PGS408"]["message"]
    assert "no time zone" in report["incident"]["timezone_note"]
    # Read in the right zone, the same file agrees with the watch record.
    fixed = diagnose_json(
        "--events",
        str(local_time_export(tmp_path)),
        "--tz",
        "America/New_York",
        "--watch-record",
        str(watch),
    )
    assert "PGS408" not in {f["code"] for f in fixed["findings"]}
    assert fixed["incident"]["window_start"].startswith("2026-05-11T22:22")


def _audited(fixture: Path) -> bool:
    """A fixture the audit reads (not one it must refuse: no Django project, several projects)."""
    expected = fixture / "expected.yaml"
    return not expected.exists() or "\nrefused:" not in "\n" + expected.read_text()


@pytest.mark.parametrize(
    "repo",
    sorted(
        p.name
        for p in (ROOT / "tests" / "fixtures" / "repos").iterdir()
        if p.is_dir() and _audited(p)
    ),
)
def test_every_audit_fixture_joins_with_the_incident(repo: str):
    """Other deployment shapes (WSGI, pgbouncer, Django pool, Kubernetes HPA, a replica
    alias) go through the join: a report, never a crash; what they already run is never proposed."""
    report = diagnose_json(
        "--events", str(EXPORTS[0]), "--repo", str(ROOT / "tests" / "fixtures" / "repos" / repo)
    )
    assert {s["kind"]: s for s in report["inputs"]}["repo"]["ok"]
    assert report["attribution"] and report["capacity"] is not None
    for item in report["in_place"]:
        for remedy in report["remedies"]:
            assert item["setting"] not in remedy["change"]
