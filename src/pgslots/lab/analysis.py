"""The baseline's artifacts read back by the events pipeline, as a user would run
`pgslots events` on them: the New Relic export (and the server log, when a server-log
reader is installed), bucketed by the load's stages so the curve lines up with the burst.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from pgslots.errors import InputError

SERVER_LOGS = ("postgres/postgresql.csv", "postgres/postgresql.json", "postgres/postgresql.log")


def event_inputs(scenario_dir: Path) -> list[Path]:
    """The NerdGraph export, plus the first server log the events pipeline can read."""
    from pgslots.events.pipeline import resolve_sources

    inputs = [scenario_dir / "newrelic" / "nerdgraph.json"]
    for name in SERVER_LOGS:
        path = scenario_dir / name
        if not path.exists():
            continue
        try:
            resolve_sources([path])
        except InputError:
            continue
        inputs.append(path)
        break
    return inputs


def events_command_line(scenario_dir: Path) -> list[str]:
    """The `pgslots events` arguments that reproduce the analysis by hand."""
    result = json.loads((scenario_dir / "result.json").read_text())
    start, end = load_window(result)
    return [
        *(str(p) for p in event_inputs(scenario_dir)),
        "--bucket", f"{int(result['bucket_seconds'])}s",
        "--since", start.isoformat(timespec="milliseconds"),
        "--until", end.isoformat(timespec="milliseconds"),
        "--align", start.isoformat(timespec="milliseconds"),
    ]


def load_window(result: dict) -> tuple[dt.datetime, dt.datetime]:
    """The load's start and end: the incident window, so tasks that ran after the load (a
    queue draining) do not add a trailing bucket to the curve."""
    start = dt.datetime.fromtimestamp(result["load_started"], dt.timezone.utc)
    return start, start + dt.timedelta(seconds=result["load_seconds"])


def analyse_baseline(scenario_dir: Path, *, show_command: bool = True) -> list[str]:
    """A few lines: what `pgslots events` concludes from the baseline's own evidence."""
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.events.timeline import TimelineOptions

    result = json.loads((scenario_dir / "result.json").read_text())
    start, end = load_window(result)
    incident = investigate(
        event_inputs(scenario_dir),
        ReadOptions(since=start, until=end),
        TimelineOptions(
            bucket_seconds=int(result["bucket_seconds"]), align=start.isoformat(), since=start, until=end
        ),
    )
    families = ", ".join(f"{name} {count}" for name, count in incident.by_combination.items())
    lines = [f"  {incident.total} connection failures: {families}"]
    if incident.shape is not None:
        counts = " -> ".join(str(c) for c in incident.shape.counts)
        lines.append(f"  curve per {int(result['bucket_seconds'])} s: {counts} ({incident.shape.label})")
    for note in incident.notes:
        lines += textwrap.wrap(note.text, width=92, initial_indent="  - ", subsequent_indent="    ")
    if show_command:
        lines.append("  (pgslots events " + " ".join(events_command_line(scenario_dir)) + ")")
    return lines
