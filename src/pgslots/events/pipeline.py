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
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
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
from pgslots.events.timeline import (
    TimelineOptions,
    build_incident,
    coarser_grouping,
    grouping_seconds,
)

MAX_SAMPLES = 5
"""Source rows kept per category, so every count in the report can be traced to its rows."""
MAX_GROUPS = 20_000
"""Past this many groups the tally asks for a coarser grouping (a long log's minutes)."""


def resolve_sources(
    paths: Sequence[Path], input_format: str | None = None
) -> list[tuple[Path, Source]]:
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
    last: dt.datetime


class EventTally:
    """Classified events, added up by what the report can tell apart, per `seconds` of
    time (`timeline.grouping_seconds`): each group sits at its first event's time and keeps
    its last one.

    `coarser(first, last)`, when given, names a coarser grouping that the timeline of that
    span allows (`timeline.coarser_grouping`): past `MAX_GROUPS` groups the tally regroups
    by it, so that memory follows the buckets the report can show, not the minutes of a
    long log."""

    def __init__(
        self,
        seconds: int = 1,
        coarser: Callable[[dt.datetime, dt.datetime], int | None] | None = None,
    ) -> None:
        self.seconds = seconds
        self.coarser = coarser
        self.limit = MAX_GROUPS
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None
        self._groups: dict[tuple[object, ...], _Group] = {}
        self.samples: dict[str, list[SourceRef]] = defaultdict(list)  # per category
        self.family_samples: dict[str, list[SourceRef]] = defaultdict(
            list
        )  # per by_combination family

    def add(self, event: ErrorEvent) -> None:
        categories = event.categories or classify(event.message, event.sqlstate, event.error_class)
        for kept in (
            *(self.samples[c.value] for c in categories),
            self.family_samples[combination_key(categories)],
        ):
            if len(kept) < MAX_SAMPLES:
                kept.append(event.source)
        key = (
            int(event.ts.timestamp()) // self.seconds,
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
        last = event.last_ts or event.ts
        self._merge(key, _Group(event, categories, event.count, last))
        self.first = event.ts if self.first is None else min(self.first, event.ts)
        self.last = last if self.last is None else max(self.last, last)
        if len(self._groups) > self.limit and self.coarser is not None:
            self._coarsen()

    def _merge(self, key: tuple[object, ...], new: _Group) -> None:
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = new
            return
        group.count += new.count
        if new.event.ts < group.event.ts:
            group.event = dataclasses.replace(new.event, last_ts=None)
        group.last = max(group.last, new.last)

    def _coarsen(self) -> None:
        assert self.coarser is not None and self.first is not None and self.last is not None
        seconds = self.coarser(self.first, self.last)
        if seconds is None or seconds <= self.seconds:
            self.limit *= 2  # the span does not allow it yet: ask again at twice the groups
            return
        self.seconds = seconds
        groups, self._groups = self._groups, {}
        for key, group in groups.items():
            self._merge((int(group.event.ts.timestamp()) // seconds, *key[1:]), group)

    def events(self) -> list[ErrorEvent]:
        merged = (
            dataclasses.replace(
                g.event,
                categories=g.categories,
                count=g.count,
                last_ts=g.last if g.last > g.event.ts else None,
            )
            for g in self._groups.values()
        )
        return sorted(merged, key=lambda e: e.ts)


def _check_some_read(stats: ReadStats, source: Source) -> None:
    """A file none of whose records could be read is the wrong format, not a damaged log."""
    if stats.records and stats.skipped >= stats.records:
        first = f" (first: {stats.notes[0]})" if stats.notes else ""
        raise InputError(
            f"none of its {stats.records} records could be read as {source.name}{first}",
            path=stats.path,
        )


def _inside(ts: dt.datetime, since: dt.datetime | None, until: dt.datetime | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


def read_events(
    resolved: Sequence[tuple[Path, Source]],
    options: ReadOptions,
    timeline: TimelineOptions | None = None,
) -> tuple[EventTally, list[ReadStats], list[InputSummary]]:
    """Stream every file through its reader into one tally. Server logs alone (no input
    with its own grid) let a long span be tallied per hour or coarser."""
    coarser = None
    if timeline is not None and all(
        source.name in serverlog.SERVER_LOG_FORMATS for _path, source in resolved
    ):
        coarser = functools.partial(coarser_grouping, timeline)
    tally = EventTally(options.group_seconds, coarser)
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
    return investigate_resolved(
        resolve_sources(paths, input_format), read_options, timeline_options
    )[0]


def investigate_resolved(
    resolved: Sequence[tuple[Path, Source]],
    read_options: ReadOptions,
    timeline_options: TimelineOptions,
) -> tuple[Incident, list[ErrorEvent]]:
    """`investigate` for files whose readers are known, with the added-up events themselves
    (`diagnose` matches the events of one source against another's)."""
    read_options = dataclasses.replace(
        read_options, group_seconds=grouping_seconds(timeline_options)
    )
    tally, stats, summaries = read_events(resolved, read_options, timeline_options)
    events = tally.events()
    incident = build_incident(
        events,
        options=timeline_options,
        inputs=summaries,
        samples=tally.samples,
        family_samples=tally.family_samples,
        grid=_grid(stats),
        server_log=serverlog.summarise(stats, events),
        timezone_note=_timezone_note(stats, read_options),
        widths=bucket_widths(stats),
    )
    return incident, events


def bucket_widths(stats: Sequence[ReadStats]) -> dict[str, int | None]:
    """Input path -> the width of its pre-counted buckets, for the inputs that came
    aggregated (None: an aggregate without a time series, whose events carry no time)."""
    return {
        s.path: s.extra[GRID].bucket_seconds
        for s in stats
        if isinstance(s.extra.get(GRID), InputGrid)
    }
