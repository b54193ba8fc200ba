"""The lab's sample app runs the `pgslots.django` checks before each scenario's load.

The checks of every scenario are run for real (`django-admin check --tag pgslots` on the
settings file the lab writes; no server is needed since the checks never connect), and the
comparison says whether each run agrees.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pgslots.lab import app as sample
from pgslots.lab import render
from pgslots.lab.results import ScenarioResult, read_checks
from pgslots.lab.scenarios import SCENARIOS

pytest.importorskip("django")
pytest.importorskip("celery")

FIXTURE = Path(__file__).parent / "fixtures" / "lab-run" / "comparison.json"

# What the settings of each scenario show (the web processes' settings): ATOMIC_REQUESTS
# everywhere (I019); CONN_MAX_AGE=60 under ASGI is the leak (W003); under WSGI with threads
# it wants CONN_HEALTH_CHECKS (I012); the pool (2 x 5 <= 17 usable) and pgbouncer (declared
# in PGSLOTS, cursors disabled) are silent.
EXPECTED = {
    "baseline": ("pgslots.W003", "pgslots.I019"),
    "conn-max-age-0": ("pgslots.I019",),
    "django-pool": ("pgslots.I019",),
    "pgbouncer": ("pgslots.I019",),
    "limit-concurrency": ("pgslots.I019",),
    "wsgi-gthread": ("pgslots.I012", "pgslots.I019"),
    "fewer-workers": ("pgslots.W003", "pgslots.I019"),
}


def test_every_scenario_shows_which_checks_fire_before_the_load(tmp_path: Path) -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    target = sample.DatabaseTarget(
        "127.0.0.1", 6543, "appdb", web=("app", "pw-web"), worker=("ops", "pw-ops")
    )
    for name, scenario in SCENARIOS.items():
        config = sample.write_config(
            tmp_path / name / "settings.json",
            scenario,
            target,
            events_dir=tmp_path / name / "events",
            broker=sample.broker_settings(None, tmp_path / name / "broker"),
            secret_key="k" * 50,
        )
        output = sample.run_checks(config)
        path = tmp_path / name / "checks.txt"
        path.write_text(output)
        assert sorted(read_checks(path)) == sorted(EXPECTED[name]), f"{name}: {output}"
        assert "pw-web" not in output


def _fixture_result() -> dict:
    """A measured scenario from the kept lab run (written before stage_seconds existed)."""
    data = json.loads(FIXTURE.read_text())["scenarios"][0]
    return {"stage_seconds": [5.0] * 4, "load_started": 0.0, **data}


def _result(checks: tuple[str, ...], slot_errors: int, idle_after: int) -> ScenarioResult:
    result = ScenarioResult.from_json(_fixture_result())
    return dataclasses.replace(
        result,
        checks=checks,
        errors_by_category={"too_many_clients": slot_errors} if slot_errors else {},
        idle_web_after_burst=idle_after,
    )


def test_the_comparison_says_whether_each_run_agrees_with_the_checks() -> None:
    leak = dataclasses.replace(
        _result(("pgslots.W003", "pgslots.I019"), 40, 9), scenario="baseline"
    )
    quiet = dataclasses.replace(_result(("pgslots.I019",), 0, 0), scenario="django-pool")
    missed = dataclasses.replace(_result(("pgslots.I019",), 12, 0), scenario="conn-max-age-0")
    assert (
        leak.checks_verdict()
        == "agrees: warned; the run had 40 slot errors, 9 idle web connections held after the burst"
    )
    assert quiet.checks_verdict() == "agrees: no warning; the run had no slot error"
    pooled = dataclasses.replace(
        _result(("pgslots.I019",), 0, 2), scenario="django-pool"
    )  # the pool's min_size, by design
    assert pooled.checks_verdict() == "agrees: no warning; the run had no slot error"
    assert missed.checks_verdict().startswith(
        "disagrees: no warning, but the run had 12 slot errors"
    )
    text = render.render_text([leak, quiet, missed])
    assert render.CHECKS_TITLE in text
    assert "  baseline        pgslots.W003 pgslots.I019: agrees: warned;" in text
    assert "- django-pool     pgslots.I019: agrees: no warning;" in render.render_markdown(
        [leak, quiet, missed]
    )
    # A result written before the checks existed reads back with none.
    old = _fixture_result()
    assert "checks" not in old
    assert ScenarioResult.from_json(old).checks == ()
