"""The HTML report, opened in a real headless Chromium: every chart drawn, nothing fetched.

The screenshots (light, dark) are kept under `tests/output/` (git-ignored) for a human look.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import require_tool
from diagnose_samples import at, gathered
from headless import Chromium
from pgslots.diagnose.join import build
from pgslots.live.model import Snapshot
from pgslots.report import charts, diagnose_html
from pgslots.serde import to_jsonable

OUTPUT = Path(__file__).parent / "output"

EXPECTED_CHARTS = {
    "errors-over-time": charts.ERRORS_TITLE,
    "backends-over-time": charts.BACKENDS_TITLE,
    "budget-per-group": charts.BUDGET_TITLE,
    "remedy-comparison": charts.REMEDIES_TITLE,
}

CHART_FACTS = """
[...document.querySelectorAll('figure[data-chart]')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0, x: 0, y: 0};
  return {
    key: f.dataset.chart,
    title: svg && svg.querySelector('title') ? svg.querySelector('title').textContent : null,
    texts: svg ? [...svg.querySelectorAll('text')].map(t => t.textContent) : [],
    shapes: svg ? svg.querySelectorAll('path, use, rect').length : 0,
    width: box.width, height: box.height, x: box.x, y: box.y + window.scrollY,
    color: svg ? getComputedStyle(svg).color : null,
  };
})
"""


def watch_record() -> list[Snapshot]:
    """A recorded burst: backends climbing to the usable slots during the incident."""
    return [
        Snapshot(
            taken_at=at(22, 20) + dt.timedelta(minutes=i),
            target="host=db user=app",
            client_backends=n,
        )
        for i, n in enumerate((41, 47, 55, 62, 70, 79, 86, 93, 97, 100, 100, 100, 99, 100, 100))
    ]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    diagnosis = build(gathered(hosts=16, watch=watch_record(), watch_path="watch.jsonl"))
    path = tmp_path_factory.mktemp("report") / "diagnosis.html"
    path.write_text(diagnose_html.render(diagnosis), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser() -> Chromium:
    executable = require_tool("chromium")
    with Chromium(executable, width=1100, height=900) as chromium:
        yield chromium


def test_the_file_references_nothing_outside_itself(report_file: Path):
    html = report_file.read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "<!DOCTYPE svg" not in html and "<?xml" not in html
    # URLs may appear only as XML namespace names, which are identifiers, never fetched.
    for match in re.finditer(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>)]*", html):
        before = html[max(0, match.start() - 14) : match.start()]
        assert re.search(r"xmlns(:\w+)?=\"$", before), f"external reference: {match.group(0)}"
    for attribute in re.finditer(r"\b(?:src|href|xlink:href)=\"([^\"]*)\"", html):
        assert attribute.group(1).startswith("#"), attribute.group(0)


def test_every_chart_renders_and_nothing_leaves_the_machine(report_file: Path, browser: Chromium):
    load = browser.open(report_file)
    assert load.requests == [report_file.resolve().as_uri()], load.requests
    assert load.failed == [] and load.console == []

    facts = {c["key"]: c for c in browser.evaluate(CHART_FACTS)}
    assert set(facts) == set(EXPECTED_CHARTS)
    for key, title in EXPECTED_CHARTS.items():
        chart = facts[key]
        assert chart["title"] == title
        assert title in chart["texts"], f"{key}: the title is not drawn as text"
        assert chart["width"] > 500 and chart["height"] > 150, chart
        assert chart["shapes"] > 20, f"{key}: almost nothing drawn"
    assert any(t.startswith("time (UTC), bucket start") for t in facts["errors-over-time"]["texts"])
    assert "client backends (connections)" in facts["backends-over-time"]["texts"]
    assert "simultaneous server connections" in facts["budget-per-group"]["texts"]

    shot = browser.screenshot(OUTPUT / "diagnose-report-light.png")
    page = Image.open(shot).convert("RGB")
    for key, chart in facts.items():
        box = (
            int(chart["x"]),
            int(chart["y"]),
            int(chart["x"] + chart["width"]),
            int(chart["y"] + chart["height"]),
        )
        pixels = page.crop(box)
        colours = pixels.getcolors(maxcolors=1 << 16) or []
        inked = sum(n for n, rgb in colours if rgb != (255, 255, 255))
        assert inked > 0.02 * pixels.width * pixels.height, f"{key}: the chart area is blank"
        assert len(colours) > 8, f"{key}: fewer colours than a drawn chart has"


def test_dark_mode_and_print_keep_charts_readable(report_file: Path, browser: Chromium):
    browser.open(report_file)
    browser.emulate(color_scheme="dark")
    dark = {c["key"]: c for c in browser.evaluate(CHART_FACTS)}
    background = browser.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    browser.screenshot(OUTPUT / "diagnose-report-dark.png")
    assert background == "rgb(13, 17, 23)"
    # Chart text and axes use currentColor: light on the dark page.
    assert all(c["color"] == "rgb(230, 237, 243)" for c in dark.values()), dark

    browser.emulate(media="print", color_scheme="dark")
    printed = {c["key"]: c for c in browser.evaluate(CHART_FACTS)}
    assert all(c["color"] == "rgb(0, 0, 0)" for c in printed.values())
    assert all(c["width"] > 300 for c in printed.values())
    pdf = browser.pdf(OUTPUT / "diagnose-report.pdf")
    assert pdf.stat().st_size > 20_000
    browser.emulate()


def test_missing_inputs_say_what_would_draw_each_chart(tmp_path: Path, browser: Chromium):
    g = gathered()
    g.topology = None
    g.remedies = []
    g.inputs = [s for s in g.inputs if s.kind != "repo"]
    from pgslots.diagnosis import InputStatus

    g.inputs.append(
        InputStatus(
            "repo", False, "", adds="`--repo PATH` would add the process groups and their budget"
        )
    )
    path = tmp_path / "events-only.html"
    path.write_text(diagnose_html.render(build(g)), encoding="utf-8")
    load = browser.open(path)
    assert load.requests == [path.resolve().as_uri()]
    drawn = {c["key"] for c in browser.evaluate(CHART_FACTS)}
    assert drawn == {"errors-over-time"}
    missing = browser.evaluate(
        "[...document.querySelectorAll('[data-missing-chart]')].map(p => [p.dataset.missingChart, p.textContent])"
    )
    said = dict(missing)
    assert "--repo PATH" in said["budget-per-group"]
    assert "backends-over-time" in said


def test_svg_is_deterministic_and_ids_do_not_collide():
    diagnosis = build(gathered(hosts=16, watch=watch_record(), watch_path="watch.jsonl"))
    first = diagnose_html.render_charts(diagnosis)
    second = diagnose_html.render_charts(diagnosis)
    assert {k: c.svg for k, c in first.items()} == {k: c.svg for k, c in second.items()}
    ids = re.findall(r'\bid="([^"]+)"', "".join(c.svg for c in first.values()))
    assert len(ids) == len(set(ids))
    assert all(
        re.search(r"url\(#([^)]+)\)", c.svg) is None or c.key in c.svg for c in first.values()
    )
    assert "#010203" not in "".join(c.svg for c in first.values())


def test_the_write_ups_incident_from_real_inputs_renders_every_chart(
    tmp_path: Path, browser: Chromium
):
    """End to end: the New Relic export and the write-up-shaped repository through the CLI,
    with a watch record of the burst, opened in Chromium."""
    root = Path(__file__).resolve().parent.parent
    watch = tmp_path / "watch.jsonl"
    watch.write_text("".join(json.dumps(to_jsonable(s)) + "\n" for s in watch_record()))
    out = tmp_path / "writeup.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgslots",
            "diagnose",
            "--events",
            str(root / "examples" / "newrelic-incident.json"),
            "--repo",
            str(root / "tests" / "fixtures" / "repos" / "writeup"),
            "--assume",
            "django.hosts=16",
            "--watch-record",
            str(watch),
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
    )
    assert result.returncode == 0, result.stderr
    load = browser.open(out)
    assert load.requests == [out.resolve().as_uri()] and load.failed == []
    facts = {c["key"]: c for c in browser.evaluate(CHART_FACTS)}
    assert {k: facts[k]["title"] for k in facts} == EXPECTED_CHARTS
    assert all(c["shapes"] > 20 and c["height"] > 150 for c in facts.values())
    legend = " ".join(facts["errors-over-time"]["texts"])
    assert (
        "reserved_superuser (402)" in legend
        and "too_many_clients + reserved_superuser (15)" in legend
    )
    assert "usable slots (97, assumed)" in " ".join(facts["budget-per-group"]["texts"])
    browser.screenshot(OUTPUT / "diagnose-writeup.png")
