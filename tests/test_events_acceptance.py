"""The write-up's incident, from the New Relic exports of it, through the installed CLI.

The fixtures are New Relic's own formats (NerdGraph NRQL response, the UI's CSV export, a
FACET ... TIMESERIES response), written by `tests/fixtures/make_newrelic_incident.py`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NEWRELIC = FIXTURES / "newrelic"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "newrelic-incident.json"
INCIDENT_EXPORTS = [  # the raw events first (EXAMPLE is the NerdGraph response), then the UI's CSV
    EXAMPLE,
    NEWRELIC / "incident-ui-export.csv",
    NEWRELIC / "incident-facet-timeseries.json",
]
CSRF = "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view"
CELERY = "OtherTransaction/Celery/ami.jobs.tasks.update_async_services_seen_for_pipelines"
VIEW = "WebTransaction/Function/ami.main.api.views:SourceImageViewSet.list"


def pgslots(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args], capture_output=True, text=True, timeout=120
    )


def events_json(path: Path, *args: str) -> dict:
    result = pgslots("events", str(path), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", INCIDENT_EXPORTS, ids=lambda p: p.name)
def test_the_write_ups_numbers_from_each_export(path: Path) -> None:
    report = events_json(path)
    assert report["schema"] == "pgslots/1" and report["command"] == "events"
    assert report["total"] == 440
    assert [(b["start"], b["total"]) for b in report["buckets"]] == [
        ("2026-05-11T22:22:00.000Z", 4),
        ("2026-05-11T22:27:00.000Z", 152),
        ("2026-05-11T22:32:00.000Z", 284),
    ]
    assert report["bucket_seconds"] == 300
    families = report["by_combination"]
    assert families["reserved_superuser"] == 402
    assert families["too_many_clients"] == 22
    assert families["too_many_clients+reserved_superuser"] == 15
    # 402 + 22 + 15 = 439: the 440th event has another message (see the fixture's script).
    assert families["stale_connection"] == 1
    transactions = {row["value"]: row["count"] for row in report["facets"]["transaction"]}
    assert transactions == {CSRF: 435, CELERY: 4, VIEW: 1}
    assert report["shape"]["label"] == "sustained_growth"
    assert report["shape"]["counts"] == [
        4,
        152,
        284,
    ]  # the display's buckets, kept beside the verdict
    assert "levels off" in report["shape"]["rule"]  # the last minutes: 58, 57, 60, 54, 55
    notes = {note["key"]: note for note in report["notes"]}
    assert notes["before_view"]["count"] == 435
    assert "failed before the view ran" in notes["before_view"]["text"]
    assert "does not prove" in notes["before_view"]["text"]
    assert notes["worker_side"]["count"] == 4


@pytest.mark.parametrize("path", INCIDENT_EXPORTS[:2], ids=lambda p: p.name)
def test_counts_add_up_and_point_back_to_their_rows(path: Path) -> None:
    report = events_json(path)
    total = report["total"]
    assert sum(b["total"] for b in report["buckets"]) == total
    assert sum(report["by_combination"].values()) == total
    for bucket in report["buckets"]:
        assert sum(bucket["by_combination"].values()) == bucket["total"]
    for rows in report["facets"].values():
        assert sum(r["count"] for r in rows) == total
    assert report["skipped"] == 0 and report["inputs"][0]["records"] == 440
    # Each sample names a row of the input whose message carries the category.
    if path.suffix == ".json":
        results = json.loads(path.read_text())["data"]["actor"]["account"]["nrql"]["results"]
        wording = {
            "reserved_superuser": "remaining connection slots",
            "too_many_clients": "too many clients",
        }
        for category, needle in wording.items():
            refs = report["samples"][category]
            assert refs and all(ref["path"] == str(path) for ref in refs)
            for ref in refs:
                assert needle in results[ref["line"] - 1]["error.message"]


def test_text_and_markdown_tell_the_same_story() -> None:
    text = pgslots("events", str(EXAMPLE))
    assert text.returncode == 0, text.stderr
    out = text.stdout
    for needle in (
        "440 connection failures",
        "sustained_growth",
        "22:22",
        "22:27",
        "22:32",
        "CsrfViewMiddleware.process_view",
        "failed before the view ran",
    ):
        assert needle in out
    markdown = pgslots(
        "events", str(NEWRELIC / "incident-ui-export.csv"), "--format", "markdown"
    ).stdout
    assert markdown.startswith("## Observation")
    assert "## Interpretation" in markdown
    assert "| 2026-05-11 22:27 | 152 |" in markdown
    assert "435 of 440 events (98.9 %)" in markdown


LAB_INCIDENT = FIXTURES / "lab-incident"  # a real lab run: tests/fixtures/make_lab_incident.py


@pytest.mark.parametrize(
    "path",
    [*INCIDENT_EXPORTS[:3], LAB_INCIDENT / "nerdgraph.json", LAB_INCIDENT / "postgresql.csv"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_one_shape_whatever_the_bucket(path: Path) -> None:
    """The shape is read from the event times: --bucket 5s, 10s, 1m and the automatic bucket
    give the same label and the same rule (the write-up's and a lab run's exports)."""
    shapes = {
        bucket: events_json(path, *(("--bucket", bucket) if bucket else ()))["shape"]
        for bucket in ("5s", "10s", "1m", None)
    }
    verdicts = {(s["label"], s["rule"]) for s in shapes.values()}
    assert len(verdicts) == 1, shapes
    if path.parent == NEWRELIC:
        assert shapes[None]["label"] == "sustained_growth"


def test_the_lab_s_demo_and_events_agree() -> None:
    """The lab records the label `pgslots events` gives its own export (the demo prints it)."""
    from pgslots.lab.results import export_shape

    report = events_json(LAB_INCIDENT / "nerdgraph.json")
    assert (
        export_shape(LAB_INCIDENT / "nerdgraph.json")
        == report["shape"]["label"]
        == "sustained_growth"
    )


def test_finer_buckets_and_other_alignments() -> None:
    minute = events_json(EXAMPLE, "--bucket", "1m")
    assert (
        minute["buckets"][0]["start"] == "2026-05-11T22:22:00.000Z" and len(minute["buckets"]) == 15
    )
    clock = events_json(EXAMPLE, "--align", "clock")
    assert [b["start"][11:16] for b in clock["buckets"]] == ["22:20", "22:25", "22:30", "22:35"]
    since = events_json(EXAMPLE, "--since", "2026-05-11 22:07", "--until", "2026-05-11T22:37:00Z")
    assert [b["total"] for b in since["buckets"]] == [0, 0, 0, 4, 152, 284]
    late = events_json(EXAMPLE, "--since", "2026-05-11T22:32:00Z")
    assert late["total"] == 284 and late["inputs"][0]["outside_window"] == 156


def test_the_committed_fixtures_are_what_the_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_nr", FIXTURES / "make_newrelic_incident.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    events = module.raw_events()
    assert json.loads(EXAMPLE.read_text()) == module.nerdgraph_raw(events)
    with (NEWRELIC / "incident-ui-export.csv").open(newline="") as handle:
        assert handle.read() == module.ui_csv(events)
    assert json.loads(
        (NEWRELIC / "incident-facet-timeseries.json").read_text()
    ) == module.nerdgraph_facet_timeseries(events)


def test_the_readme_shows_the_real_output_of_the_example() -> None:
    readme = (
        Path(__file__).resolve().parent.parent / "docs" / "commands" / "events.md"
    ).read_text()
    section = readme.split("<!-- section:events -->", 1)[1].split("<!-- /section:events -->", 1)[0]
    block = section.split("$ pgslots events examples/newrelic-incident.json\n", 1)[1].split(
        "\n```", 1
    )[0]
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", "events", "examples/newrelic-incident.json"],
        capture_output=True,
        text=True,
        cwd=EXAMPLE.parent.parent,
        timeout=120,
    )
    assert result.returncode == 0 and block == result.stdout.rstrip("\n")
