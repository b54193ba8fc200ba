"""The baseline's artifacts read back by the events pipeline, as a user would run
`pgslots events` on them: the New Relic export, then the server's log (each alone: they
record the same failures), bucketed by the load's stages from the load's start, so the
curve lines up with the burst. Every event of the export is read (no window): the shape is
then the one `pgslots events EXPORT` gives, whatever its buckets.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from pgslots.errors import InputError

SERVER_LOGS = ("postgres/postgresql.csv", "postgres/postgresql.json", "postgres/postgresql.log")


def apm_export(scenario_dir: Path) -> Path:
    return scenario_dir / "newrelic" / "nerdgraph.json"


def server_log(scenario_dir: Path) -> Path | None:
    """The first of the server's logs that the events pipeline can read, if any. It is read
    apart from the APM export: both record the same failures, and read together they would
    be counted twice."""
    from pgslots.events.pipeline import resolve_sources

    for name in SERVER_LOGS:
        path = scenario_dir / name
        if not path.exists():
            continue
        try:
            resolve_sources([path])
        except InputError:
            continue
        return path
    return None


def events_command_line(scenario_dir: Path, source: Path | None = None) -> list[str]:
    """The `pgslots events` arguments that reproduce the analysis by hand."""
    result = json.loads((scenario_dir / "result.json").read_text())
    start, _end = load_window(result)
    return [
        str(source or apm_export(scenario_dir)),
        "--bucket",
        f"{int(result['bucket_seconds'])}s",
        "--align",
        start.isoformat(timespec="milliseconds"),
    ]


def load_window(result: dict) -> tuple[dt.datetime, dt.datetime]:
    """The load's start and end: the incident window, so tasks that ran after the load (a
    queue draining) do not add a trailing bucket to the curve."""
    start = dt.datetime.fromtimestamp(result["load_started"], dt.timezone.utc)
    return start, start + dt.timedelta(seconds=result["load_seconds"])


def analyse_baseline(scenario_dir: Path, *, show_command: bool = True) -> list[str]:
    """A few lines: what `pgslots events` concludes from the baseline's own evidence, the
    APM export first, then the server's log."""
    result = json.loads((scenario_dir / "result.json").read_text())
    incident = _investigate(apm_export(scenario_dir), result)
    families = ", ".join(f"{name} {count}" for name, count in incident.by_combination.items())
    lines = [f"  APM export: {incident.total} connection failures: {families}"]
    if incident.shape is not None:
        counts = " -> ".join(str(c) for c in incident.shape.counts)
        lines.append(
            f"  curve per {int(result['bucket_seconds'])} s: {counts} ({incident.shape.label})"
        )
        lines += textwrap.wrap(
            incident.shape.rule, width=92, initial_indent="  shape: ", subsequent_indent="    "
        )
    for note in incident.notes:
        lines += textwrap.wrap(note.text, width=92, initial_indent="  - ", subsequent_indent="    ")
    if show_command:
        lines.append("  (pgslots events " + " ".join(events_command_line(scenario_dir)) + ")")
    log = server_log(scenario_dir)
    if log is not None:
        lines += _server_log_lines(_investigate(log, result), log.name)
    return lines


def _investigate(path: Path, result: dict):
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions

    start, _end = load_window(result)
    return investigate(
        [path],
        ReadOptions(),
        TimelineOptions(bucket_seconds=int(result["bucket_seconds"]), align=start.isoformat()),
    )


def _server_log_lines(incident, name: str) -> list[str]:
    families = ", ".join(f"{family} {count}" for family, count in incident.by_combination.items())
    lines = [f"  server log ({name}): {incident.total} FATALs: {families}"]
    summary = incident.server_log
    if summary is None:
        return lines
    by_user = summary.rejections_by.get("user", {})
    if by_user:
        lines.append(
            "  refused, by role: " + ", ".join(f"{role} {n}" for role, n in by_user.items())
        )
    if summary.peak_backends is not None:
        held = summary.backends_by.get("user", {})
        detail = ", ".join(f"{role} {n}" for role, n in held.items())
        lines.append(
            f"  client backends rebuilt from the log: peak {summary.peak_backends} ({detail})"
        )
    for sentence in summary.inferred_reserved:
        lines += textwrap.wrap(sentence, width=92, initial_indent="  - ", subsequent_indent="    ")
    return lines
