"""The pipeline's tally adds events up per second, then per minute or coarser on a long span,
and the incident must not change for it: same buckets, totals, facets, first and last times,
and the same shape label (its numbers then come from groups spread over their members)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from pgslots.events import pipeline
from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.pipeline import EventTally
from pgslots.events.timeline import (
    TimelineOptions,
    build_incident,
    coarser_grouping,
    grouping_seconds,
)

UTC = dt.timezone.utc
MESSAGES = (
    "sorry, too many clients already",
    'too many connections for role "app"',
    "remaining connection slots are reserved for roles with the SUPERUSER attribute",
)


def events(span_hours: int, count: int, seed: int = 3) -> list[ErrorEvent]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    made = []
    for line in range(count):
        ts = start + dt.timedelta(seconds=rng.randrange(span_hours * 3600))
        made.append(
            ErrorEvent(
                ts=ts,
                message=rng.choice(MESSAGES),
                source=SourceRef("pg-stderr", "x.log", line + 1),
                count=rng.randrange(1, 4),
                user=rng.choice(("app", "web", None)),
                last_ts=ts + dt.timedelta(seconds=rng.randrange(50))
                if rng.random() < 0.3
                else None,
            )
        )
    return made


def incident(tally: EventTally, made: list[ErrorEvent], options: TimelineOptions) -> dict:
    for event in made:
        tally.add(event)
    found = build_incident(tally.events(), options=options, samples=tally.samples)
    kept = {k: v for k, v in dataclasses.asdict(found).items() if k not in ("samples", "shape")}
    return {**kept, "shape": found.shape.label if found.shape else None}


def test_per_minute_and_coarser_groups_give_the_per_second_incident(monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "MAX_GROUPS", 500)
    options = TimelineOptions()
    made = events(span_hours=72, count=5000)
    exact = incident(EventTally(1), made, options)
    minute = incident(EventTally(60), made, options)
    coarse_tally = EventTally(60, lambda first, last: coarser_grouping(options, first, last))
    coarse = incident(coarse_tally, made, options)
    assert exact == minute == coarse
    assert coarse_tally.seconds >= 3600 and len(coarse_tally.events()) < 500
    assert exact["total"] == sum(e.count for e in made)
    assert exact["last_event"] == max(e.last_ts or e.ts for e in made)


def test_the_coarser_grouping_never_straddles_a_bucket_edge() -> None:
    first = dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert (
        coarser_grouping(TimelineOptions(), first, first + dt.timedelta(minutes=3)) is None
    )  # 15s buckets
    assert (
        coarser_grouping(TimelineOptions(), first, first + dt.timedelta(hours=2)) == 60
    )  # 15m buckets
    assert coarser_grouping(TimelineOptions(), first, first + dt.timedelta(hours=30)) == 6 * 3600
    assert (
        coarser_grouping(TimelineOptions(bucket_seconds=60), first, first + dt.timedelta(days=9))
        == 60
    )
    assert (
        coarser_grouping(TimelineOptions(bucket_seconds=30), first, first + dt.timedelta(days=9))
        is None
    )
    assert (
        coarser_grouping(TimelineOptions(align="first"), first, first + dt.timedelta(days=9)) == 60
    )
    seven = TimelineOptions(
        since=first + dt.timedelta(minutes=7)
    )  # a 1d grid from 10:07: minutes only
    assert coarser_grouping(seven, first, first + dt.timedelta(days=9)) == 60
    odd = TimelineOptions(since=first + dt.timedelta(minutes=7, seconds=5))
    assert coarser_grouping(odd, first, first + dt.timedelta(days=9)) is None


def test_events_are_added_up_per_second_whatever_the_buckets() -> None:
    """The shape is read from the event times: the grouping must not follow the display."""
    minute = dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    for options in (
        TimelineOptions(),
        TimelineOptions(bucket_seconds=300, since=minute),
        TimelineOptions(bucket_seconds=30),
        TimelineOptions(align="2026-11-25T10:00:30Z"),
    ):
        assert grouping_seconds(options) == 1
