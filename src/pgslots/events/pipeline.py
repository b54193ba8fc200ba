"""The events use case: files in, one `Incident` out.

For each file: pick its reader (by content, or `--input-format`), stream its events, keep
the reader's `ReadStats`. Then classify each event with the taxonomy, keep those inside
`--since`/`--until`, add up identical events (same second, same text, same transaction,
host, ...) so that memory follows the number of distinct events rather than the size of
the input, remember a few source rows per category, and hand the lot to the timeline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pgslots.errors import InputError
from pgslots.events import serverlog
from pgslots.events.model import Category, ErrorEvent, Incident, InputGrid, InputSummary, SourceRef
from pgslots.events.sources import (
    GRID,
    NAIVE_TIMES,
    ReadOptions,
    ReadStats,
    Source,
    detect,
    readable_head,
    source_named,
)
from pgslots.events.taxonomy import classify, combination_key
from pgslots.events.timeline import TimelineOptions, build_incident

MAX_SAMPLES = 5
"""Source rows kept per category, so every count in the report can be traced to its rows."""



def resolve_sources(paths: Sequence[Path], input_format: str | None = None) -> list[tuple[Path, Source]]:
    """Each file with the reader for it; fails on the first unreadable or unrecognised file,
    before any reading starts."""
    forced = source_named(input_format) if input_format else None
    resolved = []
    for path in paths:
        if forced is not None:
            readable_head(path)
            resolved.append((path, forced))
        else:
            resolved.append((path, detect(path)))
    return resolved


@dataclasses.dataclass
class _Group:
    event: ErrorEvent
    categories: tuple[Category, ...]
    count: int


class EventTally:
    """Classified events, added up by what the report can tell apart."""

    def __init__(self) -> None:
        self._groups: dict[tuple[object, ...], _Group] = {}
        self.samples: dict[str, list[SourceRef]] = defaultdict(list)  # per category
        self.family_samples: dict[str, list[SourceRef]] = defaultdict(list)  # per by_combination family

    def add(self, event: ErrorEvent) -> None:
        categories = event.categories or classify(event.message, event.sqlstate, event.error_class)
        for kept in (*(self.samples[c.value] for c in categories), self.family_samples[combination_key(categories)]):
            if len(kept) < MAX_SAMPLES:
                kept.append(event.source)
        key = (
            int(event.ts.timestamp()),
            event.message,
            event.sqlstate,
            event.error_class,
            event.transaction,
            event.host,
            event.app,
            event.db,
            event.user,
            event.client,
        )
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = _Group(event, categories, event.count)
        else:
            group.count += event.count

    def events(self) -> list[ErrorEvent]:
        merged = (dataclasses.replace(g.event, categories=g.categories, count=g.count) for g in self._groups.values())
        return sorted(merged, key=lambda e: e.ts)


def _check_some_read(stats: ReadStats, source: Source) -> None:
    """A file none of whose records could be read is the wrong format, not a damaged log."""
    if stats.records and stats.skipped >= stats.records:
        first = f" (first: {stats.notes[0]})" if stats.notes else ""
        raise InputError(
            f"none of its {stats.records} records could be read as {source.name}{first}", path=stats.path
        )


def _inside(ts: dt.datetime, since: dt.datetime | None, until: dt.datetime | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


def read_events(
    resolved: Iterable[tuple[Path, Source]], options: ReadOptions
) -> tuple[EventTally, list[ReadStats], list[InputSummary]]:
    """Stream every file through its reader into one tally."""
    tally = EventTally()
    all_stats: list[ReadStats] = []
    summaries: list[InputSummary] = []
    for path, source in resolved:
        stats = ReadStats(path=str(path), format=source.name)
        kept = outside = 0
        for event in source.read(path, options, stats):
            if event.count <= 0:
                continue
            if not _inside(event.ts, options.since, options.until):
                outside += event.count
                continue
            kept += event.count
            tally.add(event)
        _check_some_read(stats, source)
        all_stats.append(stats)
        summaries.append(
            InputSummary(
                path=str(path),
                format=source.name,
                events=kept,
                records=stats.records,
                skipped=stats.skipped,
                skipped_examples=tuple(stats.skipped_examples),
                notes=tuple(stats.notes),
                outside_window=outside,
            )
        )
    return tally, all_stats, summaries


def _timezone_note(stats: Sequence[ReadStats], options: ReadOptions) -> str | None:
    naive = sum(int(s.extra.get(NAIVE_TIMES, 0)) for s in stats)
    if not naive:
        return None
    zone = getattr(options.tz, "key", None) or str(options.tz)
    return f"{naive} event times had no time zone and were read as {zone} (--tz to change); all times shown are UTC."


def _grid(stats: Sequence[ReadStats]) -> InputGrid | None:
    grids = [s.extra[GRID] for s in stats if isinstance(s.extra.get(GRID), InputGrid)]
    return grids[0] if grids else None


def investigate(
    paths: Sequence[Path],
    read_options: ReadOptions,
    timeline_options: TimelineOptions,
    *,
    input_format: str | None = None,
) -> Incident:
    """Read, classify, filter and add up the events of `paths` into one `Incident`."""
    resolved = resolve_sources(paths, input_format)
    tally, stats, summaries = read_events(resolved, read_options)
    events = tally.events()
    return build_incident(
        events,
        options=timeline_options,
        inputs=summaries,
        samples=tally.samples,
        family_samples=tally.family_samples,
        grid=_grid(stats),
        server_log=serverlog.summarise(stats, events),
        timezone_note=_timezone_note(stats, read_options),
    )
