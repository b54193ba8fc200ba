"""`pgslots demo`: the incident reproduced, explained from its own evidence, and the
remedies measured under the same load, in one story with the numbers.

It runs `baseline` and the remedies that fit the machine (`DEMO_SCENARIOS`, skipping any
whose optional part is missing), reads the baseline's artifacts with the events pipeline
(the New Relic export and the server's csvlog, exactly as a user would feed them to
`pgslots events`), and names the remedy that fixed it: no slot-exhaustion error, no
failed request or task, and nothing left held after the burst.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgslots.lab.render import render_text
from pgslots.lab.results import ScenarioResult, Skipped

WIDTH = 92
SLOT_CATEGORIES = (
    "reserved_superuser",
    "reserved_role",
    "too_many_clients",
    "role_limit",
    "database_limit",
)


def slot_errors(result: ScenarioResult) -> int:
    return sum(
        n for c, n in result.errors_by_combination.items() if any(s in c for s in SLOT_CATEGORIES)
    )


def fixed(result: ScenarioResult) -> bool:
    """The remedy removed the incident: no slot error, no failure, nothing held after."""
    return slot_errors(result) == 0 and result.web_failed == 0 and result.tasks_failed == 0


def verdict(baseline: ScenarioResult, remedies: Sequence[ScenarioResult]) -> list[str]:
    lines = []
    for r in remedies:
        change = r.change
        if fixed(r):
            status = "FIXED"
        elif r.web_failed < baseline.web_failed:
            status = "helped"
        else:
            status = "did not help"
        detail = (
            f"{r.web_failed}/{r.web_attempted} requests and {r.tasks_failed}/{r.tasks_run} tasks failed "
            f"(baseline {baseline.web_failed}/{baseline.web_attempted} and {baseline.tasks_failed}/{baseline.tasks_run}); "
            f"peak {r.peak_backends} backends"
            + (f" (cap {r.cap})" if r.cap is not None else "")
            + f", {r.backends_after_burst} held after the burst"
            + (
                " (the pool's own, within the cap)"
                if r.cap is not None and 0 < r.backends_after_burst <= r.cap
                else ""
            )
        )
        if r.pgbouncer_peak_waiting:
            detail += f"; up to {r.pgbouncer_peak_waiting} clients waited in pgbouncer"
        lines.append(f"  {status:<12} {r.scenario}: {change}")
        lines += textwrap.wrap(detail, WIDTH, initial_indent=" " * 15, subsequent_indent=" " * 15)
    return lines


def story(
    results: Sequence[ScenarioResult | Skipped], analysis: Sequence[str], out_dir: Path | None
) -> str:
    measured = [r for r in results if isinstance(r, ScenarioResult)]
    baseline = next((r for r in measured if r.scenario == "baseline"), None)
    if baseline is None:
        return render_text(results)
    remedies = [r for r in measured if r.scenario != "baseline"]
    by = baseline.errors_by_category
    deployment = (
        f"The deployment (baseline): Django {_version('django')} under gunicorn + uvicorn workers (ASGI) with "
        "CONN_MAX_AGE=60 and ATOMIC_REQUESTS, the web app on a non-superuser role, a Celery "
        f"prefork worker on a superuser role; max_connections={baseline.max_connections}, "
        f"{baseline.max_connections - baseline.usable_slots} reserved for superusers "
        f"({baseline.usable_slots} usable by the app). Open-loop load: arrival rates "
        f"tripling stage by stage over {baseline.load_seconds:.0f} s, then a quiet tail."
    )
    happened = [
        f"{baseline.web_failed} of {baseline.web_attempted} web requests failed, and "
        f"{baseline.tasks_failed} of {baseline.tasks_run} Celery tasks.",
        f"Errors: {by.get('reserved_superuser', 0) + by.get('reserved_role', 0)} reserved-slot, "
        f'{by.get("too_many_clients", 0)} "sorry, too many clients already" '
        f"(the server logged {sum(baseline.server_fatals.values())} FATAL lines).",
        f"{baseline.web_errors_before_view} of {baseline.web_errors} web errors were recorded before the "
        "view ran, named after CsrfViewMiddleware.process_view: ATOMIC_REQUESTS opens the "
        "connection just before the view.",
        f"Errors per {baseline.bucket_seconds:.0f} s of load: {' '.join(str(c) for c in baseline.error_curve)}; "
        f"shape {baseline.error_shape or 'unknown'} (read from the event times, as `pgslots events` reads the "
        "New Relic export, whatever the buckets).",
        f"Client backends peaked at {baseline.peak_backends}; {baseline.backends_after_burst} were still "
        f"held {_tail(baseline)} after the load stopped ({baseline.idle_web_after_burst} idle web "
        f"connections, the oldest {baseline.oldest_idle_after_burst:.0f} s): under ASGI each request "
        "runs on its own thread with its own connection, which CONN_MAX_AGE keeps open and "
        "nothing reuses.",
    ]
    lines = [
        f"pgslots demo: a connection-slot exhaustion incident, reproduced on PostgreSQL {baseline.postgres}",
        "",
        *textwrap.wrap(deployment, WIDTH),
        "",
        "What happened:",
        *(
            line
            for item in happened
            for line in textwrap.wrap(item, WIDTH, initial_indent="  - ", subsequent_indent="    ")
        ),
    ]
    if analysis:
        lines += ["", "Read back by `pgslots events` from the baseline's artifacts:", *analysis]
    lines += ["", "The remedies, under the same load:", *verdict(baseline, remedies)]
    skipped = [r for r in results if isinstance(r, Skipped)]
    lines += [f"  skipped      {s.scenario}: {s.reason}" for s in skipped]
    lines += ["", render_text(results)]
    winners = [r.scenario for r in remedies if fixed(r)]
    lines += ["", "Fixed by: " + (", ".join(winners) if winners else "none of the remedies tried")]
    if out_dir is not None:
        lines.append(f"Artifacts (server logs, New Relic-format events, samples): {out_dir}")
    return "\n".join(lines)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(unknown version)"


def _tail(result: ScenarioResult) -> str:
    last = result.series[-1][0] - result.load_seconds if result.series else 0.0
    return f"{max(0.0, last):.0f} s"


def summary_json(
    results: Sequence[ScenarioResult | Skipped], analysis: Sequence[str]
) -> dict[str, Any]:
    measured = [r for r in results if isinstance(r, ScenarioResult)]
    return {
        "fixed_by": [r.scenario for r in measured if r.scenario != "baseline" and fixed(r)],
        "events_analysis": list(analysis),
    }
