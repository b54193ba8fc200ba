"""The comparison of a lab run's scenarios: text (terminal), Markdown and JSON.

Every figure comes from a `ScenarioResult`, itself computed from the scenario's artifacts,
so each cell can be traced to `<out>/<scenario>/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgslots.envelope import dumps, envelope
from pgslots.findings import Finding
from pgslots.lab.results import ScenarioResult, Skipped

JSON_VERSION = 1

COLUMNS = (
    ("scenario", "scenario"),
    ("web", "web failed"),
    ("tasks", "tasks failed"),
    ("reserved", "reserved-slot"),
    ("toomany", "too many clients"),
    ("other", "other errors"),
    ("peak", "peak backends"),
    ("after", "held after burst"),
    ("latency", "p50 / p95 / p99 ms"),
    ("rps", "ok req/s"),
)

RESERVED = ("reserved_superuser", "reserved_role")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def row(result: ScenarioResult) -> dict[str, str]:
    by = result.errors_by_category
    reserved = sum(by.get(c, 0) for c in RESERVED)
    toomany = by.get("too_many_clients", 0)
    other = sum(n for c, n in by.items() if c not in (*RESERVED, "too_many_clients"))
    rejected_503 = result.web_outcomes.get("503", 0)
    web = f"{result.web_failed}/{result.web_attempted}"
    if rejected_503:
        web += f" ({rejected_503} x 503)"
    peak = str(result.peak_backends)
    if result.cap is not None:
        peak += f" (cap {result.cap})"
    return {
        "scenario": result.scenario,
        "web": web,
        "tasks": f"{result.tasks_failed}/{result.tasks_run}",
        "reserved": str(reserved),
        "toomany": str(toomany),
        "other": str(other),
        "peak": peak,
        "after": str(result.backends_after_burst),
        "latency": f"{_ms(result.latency_p50)} / {_ms(result.latency_p95)} / {_ms(result.latency_p99)}",
        "rps": f"{result.throughput:.1f}",
    }


def _rows(results: Sequence[ScenarioResult | Skipped]) -> list[dict[str, str]]:
    rows = []
    for result in results:
        if isinstance(result, Skipped):
            rows.append({"scenario": result.scenario, "web": f"skipped: {result.reason}"})
        else:
            rows.append(row(result))
    return rows


def render_text(results: Sequence[ScenarioResult | Skipped]) -> str:
    rows = _rows(results)
    headers = [title for _key, title in COLUMNS]
    table = [[r.get(key, "") for key, _title in COLUMNS] for r in rows]
    measured = [line for line in table if not line[1].startswith("skipped")]
    widths = [max([len(h), *(len(line[i]) for line in measured)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for line in table:
        if line[1].startswith("skipped"):
            lines.append(f"{line[0].ljust(widths[0])}  {line[1]}")
        else:
            lines.append(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            )
    return "\n".join(lines + checks_lines(results))


CHECKS_TITLE = "Checks before the load (manage.py check --tag pgslots), and whether the run agrees:"


def checks_lines(results: Sequence[ScenarioResult | Skipped], bullet: str = "") -> list[str]:
    """One line per measured scenario: the pgslots.django ids and the run's verdict."""
    measured = [r for r in results if isinstance(r, ScenarioResult)]
    if not measured:
        return []
    width = max(len(r.scenario) for r in measured)
    lines = [
        f"{r.scenario.ljust(width)}  {' '.join(r.checks) or 'none'}: {r.checks_verdict()}"
        for r in measured
    ]
    return ["", CHECKS_TITLE] + [f"{bullet or '  '}{line}" for line in lines]


def render_markdown(results: Sequence[ScenarioResult | Skipped]) -> str:
    rows = _rows(results)
    lines = ["| " + " | ".join(title for _k, title in COLUMNS) + " |"]
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    lines.extend("| " + " | ".join(r.get(key, "") for key, _t in COLUMNS) + " |" for r in rows)
    return "\n".join(lines + checks_lines(results, bullet="- "))


def to_json(
    results: Sequence[ScenarioResult | Skipped],
    meta: dict[str, Any],
    command: str = "lab",
    findings: Sequence[Finding] = (),
) -> str:
    payload = {"version": JSON_VERSION, **meta, "scenarios": [r.to_json() for r in results]}
    return dumps(envelope(command, payload, findings))


def legend() -> str:
    return (
        "web failed: non-200 answers of the open-loop requests; tasks: Celery tasks failed/run; "
        "reserved-slot / too many clients / other: New Relic-format error events by category; "
        "peak backends: client backends the sampler saw (its own excluded; cap = what the shape "
        "can hold at most); held after burst: backends still open at the end of the quiet tail."
    )
