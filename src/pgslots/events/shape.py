"""The curve's shape, read from the event times: one verdict whatever the display buckets.

Restart-or-exhaustion is the first call an on-call engineer makes, so it must not depend on a
display setting: `--bucket 5s` and `--bucket 1m` used to give opposite labels for the same
run. Here the curve is read on a grid of the data's own: the events' span, from the first
event to the last, cut into `SEGMENTS` equal parts. No option moves it (not `--bucket`, not
`--align`, not the window), so `events`, `diagnose` and the lab's demo give the same label
for the same events.

An event that stands for several (a per-second group of the pipeline's tally, a server log's
pre-counted group, a New Relic TIMESERIES bucket) is spread evenly over the time it covers:
its first to its last member, or its input bucket's width.

The rules, tried in this order (`RULES` is the sentence the report shows):

* `isolated`: fewer than `ISOLATED_MAX` events.
* `spike_and_drop`: all events within one second, or a part holding at least `SPIKE_RATIO`
  times the mean of the others and followed by a part at `DROP_RATIO` of it or less.
* `sustained_growth`: the end of the span is where the failures are: one of the last two parts
  within `NEAR_PEAK` of the highest and the last at least `PLATEAU_RATIO` of it; the last two
  parts together at least `GROWTH_RATIO` times the first two; the second half busier than the
  first. Two parts, not one, because failures under load come in waves (a periodic Celery
  fan-out takes the reserved slots every few seconds): one low part at the end does not undo
  a rise. Its ending is said apart: "still growing" when the last part is at least `RISING`
  times the one before it, else it "levels off".
* `plateau`: every part at least `PLATEAU_RATIO` of the highest.
* `irregular`: none of these.

The events' span is all the curve knows: a burst alone in the input fills its own span,
whether the failures stopped or the export ended; the rule says so rather than guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pgslots.events.model import ErrorEvent, Shape

SEGMENTS = 6
ISOLATED_MAX = 10
SPIKE_RATIO = 2.0
DROP_RATIO = 0.25
GROWTH_RATIO = 2.0
NEAR_PEAK = 0.8
RISING = 1.15
PLATEAU_RATIO = 0.5
ONE_MOMENT = 1.0  # seconds: a span shorter than this is one moment, not a curve

RULES = (
    f"the events' own span (first to last event) cut into {SEGMENTS} equal parts, whatever the display buckets; "
    f"isolated: fewer than {ISOLATED_MAX} events. "
    f"spike_and_drop: all within one second, or a part at least {SPIKE_RATIO:g}x the others' mean followed by one at "
    f"{DROP_RATIO:.0%} of it or less. "
    f"sustained_growth: one of the last two parts at least {NEAR_PEAK:.0%} of the highest, the last at least "
    f"{PLATEAU_RATIO:.0%} of it, the last two {GROWTH_RATIO:g}x the first two, the second half busier than the first; "
    f'"still growing" when the last part is {RISING:g}x the one before, else it levels off. '
    f"plateau: every part at least {PLATEAU_RATIO:.0%} of the highest. irregular: none of these"
)


def _seconds(moment: dt.datetime) -> float:
    return moment.timestamp()


def spans(
    events: Sequence[ErrorEvent], widths: Mapping[str, int | None] | None = None
) -> list[tuple[float, float, int]]:
    """(start, end, count) in epoch seconds for each event that carries a time: a group's
    first to last member, or its input bucket (`widths`: input path -> the width of its
    pre-counted buckets; None for an aggregate without a time series, whose events carry no
    time of their own and are left out)."""
    widths = widths or {}
    result = []
    for event in events:
        start = _seconds(event.ts)
        if event.source.path in widths:
            width = widths[event.source.path]
            if width is None:
                continue
            result.append((start, start + width, event.count))
        else:
            end = _seconds(event.last_ts) if event.last_ts is not None else start
            result.append((start, max(start, end), event.count))
    return result


def segment_counts(
    timed: Sequence[tuple[float, float, int]], segments: int = SEGMENTS
) -> list[float]:
    """Events per equal part of the span, each event spread evenly over the time it covers."""
    first = min(s for s, _e, _n in timed)
    last = max(e for _s, e, _n in timed)
    width = (last - first) / segments
    counts = [0.0] * segments

    def index(t: float) -> int:
        return min(segments - 1, int((t - first) / width))

    for start, end, n in timed:
        if end <= start:
            counts[index(start)] += n
            continue
        for i in range(index(start), index(end) + 1):
            low, high = first + i * width, first + (i + 1) * width
            counts[i] += n * (min(end, high) - max(start, low)) / (end - start)
    return counts


def _rate(count: float, seconds: float) -> str:
    per = "s" if seconds < 60 else "min"
    value = count / seconds if per == "s" else count / seconds * 60
    return f"{value:.3g}/{per}"


def shape_from_events(
    events: Sequence[ErrorEvent],
    widths: Mapping[str, int | None] | None = None,
    counts: Sequence[int] = (),
) -> Shape | None:
    """The verdict for these events (see the module's rules); `counts` are the display
    buckets, kept in the `Shape` for the renderers and never read here."""
    timed = spans(events, widths)
    total = sum(n for _s, _e, n in timed)
    if total == 0:
        return None
    first = min(s for s, _e, _n in timed)
    last = max(e for _s, e, _n in timed)
    length = last - first
    display = tuple(counts)
    if total < ISOLATED_MAX:
        return Shape(
            "isolated",
            f"{total} events in all, fewer than {ISOLATED_MAX}: too few for a curve",
            display,
        )
    if length < ONE_MOMENT:
        return Shape(
            "spike_and_drop",
            f"all {total} events within one second: a burst that started and stopped at once, as a restart or a "
            "deploy produces",
            display,
        )
    parts = segment_counts(timed)
    return _verdict(parts, total, length, display)


def _verdict(parts: list[float], total: int, length: float, display: tuple[int, ...]) -> Shape:
    part = length / len(parts)
    shown = " → ".join(f"{p:.0f}" for p in parts)
    lead = f"{total} events over {_duration(length)}, per sixth ({_duration(part)} each): {shown}"
    peak = max(parts)
    at = parts.index(peak)
    others = parts[:at] + parts[at + 1 :]
    others_mean = sum(others) / len(others)
    later = parts[at + 1 :]
    if later and min(later) <= DROP_RATIO * peak and peak >= SPIKE_RATIO * max(others_mean, 1e-9):
        return Shape(
            "spike_and_drop",
            f"{lead}: the peak ({peak:.0f}) is {peak / max(others_mean, 1e-9):.1f}x the other parts' mean "
            f"({others_mean:.0f}) and then falls to {min(later):.0f} (at most {DROP_RATIO:.0%} of it): a spike that "
            "drops, as a restart or a deploy produces",
            display,
        )
    last = parts[-1]
    start, end = (parts[0] + parts[1]) / 2, (parts[-2] + parts[-1]) / 2
    half = len(parts) // 2
    if (
        max(parts[-2:]) >= NEAR_PEAK * peak
        and last >= PLATEAU_RATIO * peak
        and end >= GROWTH_RATIO * max(start, 1e-9)
        and sum(parts[half:]) > sum(parts[:half])
    ):
        growth = f"{end / start:.0f}x" if start >= 0.5 else "from almost none"
        rate = f"from {_rate(start, part)} to {_rate(end, part)} ({growth}, first two parts to last two)"
        if last >= RISING * parts[-2]:
            ending = (
                f"and still growing when the data ends (the last part {last / max(parts[-2], 1e-9):.2f}x the one "
                "before)"
            )
        else:
            ending = (
                f"then levels off: the last part ({last:.0f}) is not above the one before ({parts[-2]:.0f})"
                if last <= parts[-2]
                else f"then levels off: the last two parts ({parts[-2]:.0f}, {last:.0f}) are within {RISING - 1:.0%}"
            )
        return Shape(
            "sustained_growth",
            f"{lead}: the failure rate rose {rate} {ending}. Not a restart blip (a restart spikes and drops): "
            "demand rose against a fixed number of slots",
            display,
        )
    if min(parts) >= PLATEAU_RATIO * peak:
        return Shape(
            "plateau",
            f"{lead}: every part is at least {PLATEAU_RATIO:.0%} of the highest ({peak:.0f}): a steady level of "
            "failures, the limit hit continuously",
            display,
        )
    return Shape("irregular", f"{lead}: none of the shape rules holds ({RULES})", display)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"
