"""A `pgslots lab --out DIR` run, read back: each scenario's measured effect against the
run's baseline, keyed by the remedy it reproduces.

The lab writes `DIR/comparison.json` (every scenario's `ScenarioResult`, or why it was
skipped) and `DIR/<scenario>/result.json`; we read the former, or the latter when the
comparison is missing (an interrupted run). The numbers are the lab's, at the lab's scale
(a small server, a scaled-down deployment): the report compares a remedy with the baseline
of the same run, never with production counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgslots.diagnosis import LabRun, LabScenario
from pgslots.errors import InputError
from pgslots.lab.scenarios import SCENARIOS
from pgslots.remedy import MeasuredEffect

BASELINE = "baseline"


def _remedy_code(scenario: str) -> str:
    """The catalogue remedy a lab scenario measures (its `Scenario.remedy`); "" for the
    baseline and for a scenario this version of pgslots does not know."""
    known = SCENARIOS.get(scenario)
    return known.remedy.code if known is not None and known.remedy is not None else ""


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}", path=str(path)) from None


def _results(run: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(measured scenarios, notes about skipped ones)."""
    comparison = run / "comparison.json"
    if comparison.is_file():
        data = _load(comparison)
        entries = data.get("scenarios") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise InputError(
                'no "scenarios" list: not a pgslots lab comparison', path=str(comparison)
            )
    else:
        entries = [_load(p) for p in sorted(run.glob("*/result.json"))]
    measured = [e for e in entries if isinstance(e, dict) and "web_failed" in e]
    skipped = [
        f"{e['scenario']}: skipped ({e['skipped']})"
        for e in entries
        if isinstance(e, dict) and "skipped" in e
    ]
    return measured, skipped


def _outcomes(outcomes: dict[str, int]) -> str:
    """The failed requests' answers ("31 x 503"): a 503 from a concurrency limit is the
    remedy working as designed, a 500 is the database refusing."""
    failed = {k: v for k, v in outcomes.items() if str(k) not in ("200", "ok")}
    return ", ".join(f"{v} x {k}" for k, v in sorted(failed.items(), key=lambda kv: -kv[1]))


def read(run: Path) -> tuple[LabRun, dict[str, MeasuredEffect]]:
    if not run.is_dir():
        raise InputError("expected the directory of `pgslots lab --out DIR`", path=str(run))
    measured, notes = _results(run)
    if not measured:
        raise InputError(
            "no measured scenario in it (no comparison.json, no */result.json)", path=str(run)
        )
    by_name = {r["scenario"]: r for r in measured}
    baseline = by_name.get(BASELINE)
    scenarios = tuple(
        LabScenario(
            name=r["scenario"],
            failed_requests=int(r["web_failed"]),
            peak_backends=r.get("peak_backends"),
            requests=r.get("web_attempted"),
            remedy=_remedy_code(r["scenario"]),
            note="; ".join(
                p
                for p in (
                    r.get("change", ""),
                    _outcomes(r.get("web_outcomes") or {}),
                    f"tasks failed {r.get('tasks_failed', 0)}/{r.get('tasks_run', 0)}",
                    f"{r.get('backends_after_burst', 0)} backends still held after the burst",
                )
                if p
            ),
        )
        for r in measured
    )
    effects: dict[str, MeasuredEffect] = {}
    if baseline is None:
        notes.append("no baseline scenario in this run: the remedies' effects cannot be compared")
    else:
        for r in measured:
            code = _remedy_code(r["scenario"])
            if not code:
                continue
            effects[code] = MeasuredEffect(
                scenario=r["scenario"],
                run_dir=str(run),
                failed_requests=int(r["web_failed"]),
                baseline_failed_requests=int(baseline["web_failed"]),
                peak_backends=int(r.get("peak_backends") or 0),
                baseline_peak_backends=int(baseline.get("peak_backends") or 0),
                note=f"of {r.get('web_attempted')} requests, at the lab's scale ({r.get('usable_slots')} usable slots)",
            )
    usable = baseline.get("usable_slots") if baseline else None
    return LabRun(
        path=str(run),
        baseline=BASELINE if baseline else "",
        scenarios=scenarios,
        usable=usable,
        notes=tuple(notes),
    ), effects
