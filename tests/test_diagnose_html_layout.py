"""The HTML report's first screen and narrow layout, measured in a real headless Chromium.

What a reader needs first (the headline and the first remedy: "Do this first") must sit in
the top 900 px at a desktop width (1400) and a phone-ish width (500), and no table may be
wider than a 500 px viewport. The screenshots are kept under `tests/output/` for a human look.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool
from headless import Chromium
from pgslots.diagnosis import BackendSeries, LabRun, LabScenario
from pgslots.events.model import BackendPoint
from pgslots.report import charts

OUTPUT = Path(__file__).parent / "output"
ROOT = Path(__file__).resolve().parent.parent

FIRST_SCREEN = """
(() => {
  const bottom = el => el ? el.getBoundingClientRect().bottom + window.scrollY : null;
  const box = document.querySelector('#do-first');
  return {
    headline: bottom(document.querySelector('p.headline')),
    first_remedy: bottom(box && box.querySelector('h2')),
    first_change: bottom(box && box.querySelector('p.change')),
    box_text: box ? box.textContent : '',
    directions: document.querySelector('#directions').getBoundingClientRect().top + window.scrollY,
  };
})()
"""

TABLE_WIDTHS = """
({inner: window.innerWidth, page: document.documentElement.scrollWidth,
  tables: [...document.querySelectorAll('table')].map(t => t.scrollWidth)})
"""


@pytest.fixture(scope="module")
def writeup_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The write-up's incident, as the issue gives it: 16 hosts assumed."""
    out = tmp_path_factory.mktemp("layout") / "writeup.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgslots",
            "diagnose",
            "--events",
            str(ROOT / "examples" / "newrelic-incident.json"),
            "--repo",
            str(ROOT / "tests" / "fixtures" / "repos" / "writeup"),
            "--assume",
            "django.hosts=16",
            "--format",
            "html",
            "--output",
            str(out),
            "--fail-on",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def browser() -> Chromium:
    with Chromium(require_tool("chromium"), width=1400, height=900) as chromium:
        yield chromium


@pytest.mark.parametrize("width", [1400, 500])
def test_the_first_screen_holds_the_headline_and_the_first_remedy(
    writeup_report: Path, browser: Chromium, width: int
):
    browser.resize(width, 900)
    browser.open(writeup_report)
    facts = browser.evaluate(FIRST_SCREEN)
    browser.viewport_shot(OUTPUT / f"diagnose-first-screen-{width}.png")
    browser.screenshot(OUTPUT / f"diagnose-writeup-{width}.png")
    assert facts["headline"] is not None and facts["headline"] <= 900, facts
    assert facts["first_remedy"] is not None and facts["first_change"] <= 900, facts
    assert "Do this first: R01" in facts["box_text"]
    assert "CONN_MAX_AGE=0" in facts["box_text"]
    # R01 alone leaves the worst case unbounded: the box names the first remedy that fits.
    assert "Then, to fit the slots" in facts["box_text"]
    assert facts["directions"] > facts["first_change"]


def test_no_table_is_wider_than_a_500_px_viewport(writeup_report: Path, browser: Chromium):
    browser.resize(500, 900)
    browser.open(writeup_report)
    widths = browser.evaluate(TABLE_WIDTHS)
    assert widths["tables"], "the report has tables"
    assert all(w <= widths["inner"] for w in widths["tables"]), widths
    assert widths["page"] <= widths["inner"], widths
    # The budget table (five text columns) stacks each row's cells under their headers.
    assert (
        browser.evaluate(
            "getComputedStyle(document.querySelector('#budget table.stack td')).display"
        )
        == "block"
    )
    browser.resize(1400, 900)
    browser.open(writeup_report)
    assert (
        browser.evaluate(
            "getComputedStyle(document.querySelector('#budget table.stack td')).display"
        )
        == "table-cell"
    )


def tick_labels(svg: str, axis_label: str) -> list[str]:
    """The x tick labels: the texts drawn before the x axis label (matplotlib draws the x
    axis first)."""
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    return texts[: texts.index(axis_label)]


def test_a_short_backends_record_gets_distinct_tick_labels():
    """A lab-length record (3 minutes, a point every 5 s): '%H:%M' alone would repeat."""
    start = dt.datetime(2026, 5, 11, 22, 20, tzinfo=dt.timezone.utc)
    points = tuple(BackendPoint(start + dt.timedelta(seconds=5 * i), 10 + i % 7) for i in range(36))
    chart = charts.backends_over_time(
        [BackendSeries("watch record", "watch.jsonl", points, peak=16)], None
    )
    assert chart is not None
    labels = tick_labels(chart.svg, "time (UTC)")
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", label) for label in labels), labels


def test_lab_bars_are_coloured_by_outcome_not_green_for_every_remedy():
    lab = LabRun(
        "run",
        "baseline",
        (
            LabScenario("baseline", 83, 20, requests=145),
            LabScenario("conn-max-age-0", 0, 15, requests=145, remedy="R01"),
            LabScenario("limit-concurrency", 28, 12, requests=145, remedy="R02"),
            LabScenario("pool-too-small", 90, 12, requests=145, remedy="R03"),
        ),
    )
    outcomes = [charts._lab_outcome(s, lab.scenarios[0]) for s in lab.scenarios]
    assert outcomes == [
        "baseline",
        "no failure",
        "fewer failures, still failing",
        "no better than baseline",
    ]
    chart = charts.remedy_comparison([], None, lab)
    assert chart is not None
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", chart.svg)
    assert {"no failure", "fewer failures, still failing", "no better than baseline"} <= set(texts)
    # Each outcome's colour is drawn (bars and legend): a failing remedy is not green.
    for outcome in outcomes:
        assert charts.LAB_OUTCOMES[outcome] in chart.svg
