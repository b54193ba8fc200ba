"""Lab findings (PGS3xx) from a real lab run's results: a remedy that did not help, one that
helped in part, a baseline that did not reproduce, a skipped scenario."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pgslots.lab.results import ScenarioResult, Skipped
from pgslots.rules.lab import check_lab

RESULT = Path(__file__).resolve().parent / "fixtures" / "lab-incident" / "result.json"


def baseline() -> ScenarioResult:
    result = ScenarioResult.from_json(json.loads(RESULT.read_text()))
    assert result.scenario == "baseline" and result.web_failed > 0
    return result


def codes(results: list) -> list[str]:
    return [f.code for f in check_lab(results)]


def test_a_reproduced_baseline_alone_has_no_finding():
    assert codes([baseline()]) == []


def test_remedies_are_judged_against_the_baseline_of_the_same_run():
    base = baseline()
    worse = dataclasses.replace(base, scenario="fewer-workers", web_failed=base.web_failed)
    partly = dataclasses.replace(
        base, scenario="limit-concurrency", web_failed=base.web_failed // 4
    )
    fixed = dataclasses.replace(
        base, scenario="django-pool", web_failed=0, tasks_failed=0, errors_by_combination={}
    )
    findings = check_lab([base, worse, partly, fixed])
    assert [f.code for f in findings] == ["PGS302", "PGS303"]
    assert findings[0].message.startswith(f"fewer-workers: {base.web_failed}/{base.web_attempted}")
    assert findings[0].evidence[0].path.endswith("result.json")


def test_a_baseline_without_slot_errors_is_not_a_reproduction():
    quiet = dataclasses.replace(baseline(), web_failed=0, errors_by_combination={})
    assert codes([quiet]) == ["PGS301"]


def test_a_skipped_scenario_says_why():
    findings = check_lab([baseline(), Skipped("pgbouncer", "pgbouncer is not installed")])
    assert [f.code for f in findings] == ["PGS304"] and "not installed" in findings[0].message
