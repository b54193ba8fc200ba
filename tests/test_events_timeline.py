"""The timeline's rules: bucket sizes and alignment, shape labels, notes, and counts that add up."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgslots.errors import InputError
from pgslots.events.model import Category, ErrorEvent, SourceRef
from pgslots.events.taxonomy import classify
from pgslots.events.timeline import (
    TimelineOptions,
    build_incident,
    parse_bucket,
)
from pgslots.events.transactions import before_view, in_view, kind

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 11, 22, 22, 37, tzinfo=UTC)


def event(
    seconds: float, message: str = "sorry, too many clients already", count: int = 1, **fields
) -> ErrorEvent:
    return ErrorEvent(
        ts=T0 + dt.timedelta(seconds=seconds),
        message=message,
        source=SourceRef("test", "x", 1),
        count=count,
        categories=classify(message),
        **fields,
    )


def per_minute(counts: list[int], start: float = 0.0) -> list[ErrorEvent]:
    """`counts[i]` events spread evenly over minute i: a curve as event times."""
    return [
        event(start + 60 * i + 60 * (k + 0.5) / n) for i, n in enumerate(counts) for k in range(n)
    ]


def ramp(seconds: float, rate_at) -> list[ErrorEvent]:
    """One event each time the integral of `rate_at` (events per second) passes a whole number."""
    events, total, t, step = [], 0.0, 0.0, 0.05
    while t < seconds:
        total += rate_at(t) * step
        while total >= 1:
            events.append(event(t))
            total -= 1
        t += step
    return events


@pytest.mark.parametrize(
    ("events", "label", "says"),
    [
        (
            per_minute([1, 0, 2, 1, 0, 46, 28, 20, 26, 32, 58, 57, 60, 54, 55]),
            "sustained_growth",
            "levels off",
        ),
        (per_minute([58, 57, 60, 54, 55]), "plateau", "every part"),
        (ramp(20, lambda t: 1 + t), "sustained_growth", "still growing"),
        (ramp(60, lambda t: 20 if 10 <= t < 20 else 1), "spike_and_drop", "falls to"),
        ([event(0.2, count=1) for _ in range(40)], "spike_and_drop", "within one second"),
        (per_minute([3, 0, 1]), "isolated", "fewer than 10"),
        (per_minute([10, 50, 5, 60, 20, 40]), "irregular", "none of the shape rules"),
    ],
)
def test_shape_labels_and_their_rules(events, label, says) -> None:
    shape = build_incident(events).shape
    assert shape is not None and shape.label == label, shape
    assert says in shape.rule
    if label != "sustained_growth":
        assert "and still growing when" not in shape.rule


def test_levels_off_is_not_still_growing() -> None:
    """The write-up's last five minutes (58, 57, 60, 54, 55 per minute) are no growth, at
    any bucket, alone or after the climb."""
    for bucket in (None, 5, 10, 60, 300):
        options = TimelineOptions(bucket_seconds=bucket)
        alone = build_incident(per_minute([58, 57, 60, 54, 55]), options=options).shape
        after = build_incident(
            per_minute([1, 0, 2, 1, 0, 46, 28, 20, 26, 32, 58, 57, 60, 54, 55]), options=options
        ).shape
        assert alone is not None and alone.label == "plateau"
        assert (
            after is not None
            and after.label == "sustained_growth"
            and "still growing when" not in after.rule
        )


def test_shape_of_nothing_is_none() -> None:
    assert build_incident([]).shape is None


curves = st.lists(
    st.tuples(st.floats(0, 3600, allow_nan=False), st.integers(1, 30)), min_size=1, max_size=80
)


@given(curves, st.sampled_from([1, 5, 10, 60, 300, 3600]))
@settings(max_examples=150, deadline=None)
def test_the_verdict_does_not_depend_on_the_bucket(times, bucket) -> None:
    """Generated curves (event times with counts): the automatic bucket and any --bucket,
    any alignment, give the same shape, label and rule."""
    events = sorted((event(t, count=n) for t, n in times), key=lambda e: e.ts)
    auto = build_incident(events).shape
    chosen = build_incident(
        events, options=TimelineOptions(bucket_seconds=bucket, align="clock")
    ).shape
    assert auto is not None and chosen is not None
    assert (chosen.label, chosen.rule) == (auto.label, auto.rule)


@given(st.floats(5, 10 * 60, allow_nan=False), st.floats(0, 59, allow_nan=False))
@settings(max_examples=150, deadline=None)
def test_a_short_burst_gets_at_least_six_buckets(span, offset) -> None:
    incident = build_incident([event(offset), event(offset + span)])
    assert 6 <= len(incident.buckets) <= 12, (incident.bucket_seconds, len(incident.buckets))


def test_bucket_parsing() -> None:
    assert [parse_bucket(t) for t in ("1m", "5m", "1h", "30s", "15min", "1d")] == [
        60,
        300,
        3600,
        30,
        900,
        86400,
    ]
    for bad in ("0m", "5x", "", "m"):
        with pytest.raises(InputError):
            parse_bucket(bad)


def test_automatic_bucket_and_first_minute_alignment() -> None:
    events = [event(0), event(400), event(800)]
    incident = build_incident(events)
    assert incident.bucket_seconds == 300 and incident.buckets[0].start == T0.replace(second=0)
    short = build_incident([event(0), event(300)])
    assert short.bucket_seconds == 30 and len(short.buckets) == 11
    assert short.buckets[0].start == T0  # sub-minute buckets start at the first event's second
    burst = build_incident([event(0), event(9)])
    assert burst.bucket_seconds == 1 and len(burst.buckets) == 10
    day = build_incident([event(0), event(86400 * 2)])
    assert day.bucket_seconds == 6 * 3600


def test_an_explicit_until_and_a_guard_on_bucket_count() -> None:
    options = TimelineOptions(
        bucket_seconds=60,
        since=T0.replace(second=0),
        until=T0.replace(second=0) + dt.timedelta(minutes=10),
    )
    incident = build_incident([event(0, count=3)], options=options)
    assert len(incident.buckets) == 10 and incident.buckets[0].total == 3
    with pytest.raises(InputError, match="buckets"):
        build_incident([event(0), event(86400 * 30)], options=TimelineOptions(bucket_seconds=1))


def test_transaction_kinds() -> None:
    assert before_view(
        "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view"
    )
    assert before_view("WebTransaction/Function/shop.middleware:TenantMiddleware.__call__")
    assert in_view("WebTransaction/Function/ami.main.api.views:SourceImageViewSet.list")
    assert kind("OtherTransaction/Celery/ami.jobs.tasks.x") == "worker"
    assert kind("celery:shop.tasks.t") == "worker"
    # the events' notes and the diagnosis's attribution used to disagree on this one
    assert kind("celery:tasks.update") == "worker"
    assert (
        not before_view("/checkout/") and not in_view("/checkout/") and kind("/checkout/") == "web"
    )
    assert kind(None) == "unattributed" and not before_view(None)


def test_notes_say_which_share_they_speak_for() -> None:
    csrf = "WebTransaction/Function/django.middleware.csrf:CsrfViewMiddleware.process_view"
    events = [event(i, count=9, transaction=csrf) for i in range(3)] + [
        event(5, message="boom", transaction="OtherTransaction/Celery/t")
    ]
    notes = {n.key: n for n in build_incident(events).notes}
    assert notes["before_view"].count == 27 and notes["before_view"].share == pytest.approx(27 / 28)
    assert notes["worker_side"].count == 1 and notes["unrecognised"].count == 1


messages = st.sampled_from(
    [
        "sorry, too many clients already",
        "remaining connection slots are reserved for non-replication superuser connections",
        "FATAL:  sorry, too many clients already\nFATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
        "couldn't get a connection after 0.50 sec",
        "something else",
    ]
)


@given(
    st.lists(
        st.tuples(
            st.floats(0, 7200), messages, st.integers(1, 50), st.sampled_from(["a", "b", None])
        ),
        max_size=60,
    ),
    st.sampled_from([None, 60, 300, 3600]),
)
@settings(max_examples=80, deadline=None)
def test_every_count_adds_up_to_the_total(rows, bucket) -> None:
    events = [event(s, m, c, transaction=t) for s, m, c, t in rows]
    incident = build_incident(
        events, options=TimelineOptions(bucket_seconds=bucket, facets=("transaction", "category"))
    )
    total = sum(c for _s, _m, c, _t in rows)
    assert incident.total == total
    assert sum(b.total for b in incident.buckets) == total
    assert sum(incident.by_combination.values()) == total
    for bucket_count in incident.buckets:
        assert sum(bucket_count.by_combination.values()) == bucket_count.total
    for rows_ in incident.facets.values():
        assert sum(r.count for r in rows_) == total
    assert all(incident.by_category.get(c.value, 0) <= total for c in Category)


T0_MS = int(T0.timestamp() * 1000)


@given(
    st.sampled_from([20_000, 120_000, 900_000]).flatmap(
        lambda span: st.lists(
            st.tuples(st.integers(0, span), messages, st.sampled_from(["a", "b"])),
            min_size=1,
            max_size=120,
        )
    )
)
@settings(max_examples=60, deadline=None)
def test_the_verdict_through_the_pipeline_does_not_depend_on_the_bucket(
    tmp_path_factory, rows
) -> None:
    """Generated curves written as a New Relic export and read by the pipeline (which adds up
    events of the same second): --bucket 5s, 10s, 1m, 5m and the automatic bucket give one shape."""
    from pgslots.events.pipeline import investigate
    from pgslots.events.sources import ReadOptions
    from pgslots.lab.nrexport import nerdgraph_envelope

    path = tmp_path_factory.mktemp("curve") / "export.json"
    events = [
        {
            "timestamp": T0_MS + ms,
            "error.message": m,
            "error.class": "psycopg:OperationalError",
            "transactionName": f"WebTransaction/Function/{t}",
        }
        for ms, m, t in rows
    ]
    path.write_text(json.dumps(nerdgraph_envelope(events, T0_MS, T0_MS + 900_001)))
    shapes = {
        bucket: investigate([path], ReadOptions(), TimelineOptions(bucket_seconds=bucket)).shape
        for bucket in (None, 5, 10, 60, 300)
    }
    assert len({(s.label, s.rule) if s else None for s in shapes.values()}) == 1, shapes
