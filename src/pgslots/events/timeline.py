"""From classified events to the incident picture: buckets, message families, facets, the
curve's shape and what the transaction names mean.

Every number here is a sum of `ErrorEvent.count` (aggregated inputs and the server-log fast
path yield pre-counted events), so totals, buckets, families and facet rows all add up to
the same total.

Bucket alignment. An APM chart starts its buckets at the query window's start: New Relic's
`TIMESERIES 5 minutes` over a window from 22:22 gives 22:22, 22:27, 22:32. Raw events carry
no window, so by default the window starts with the first event's minute, which gives the
same grid as the chart the events were exported from when that chart's window started
with the burst (hourly and coarser buckets sit on the clock instead). `--since` makes the
window start there (as NRQL's SINCE does), an aggregated export keeps its own grid, and
`--align clock|first|TIME` overrides all of that.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pgslots.errors import InputError
from pgslots.events import transactions
from pgslots.events.model import (
    SLOT_EXHAUSTION,
    BucketCount,
    Category,
    ErrorEvent,
    FacetRow,
    Incident,
    InputGrid,
    InputSummary,
    Note,
    ServerLogSummary,
    SourceRef,
)
from pgslots.events.shape import shape_from_events
from pgslots.events.taxonomy import combination_key, reserved_wording
from pgslots.events.times import UTC, parse_user_time
from pgslots.events.transactions import TransactionKind

BUCKET_LADDER = (1, 2, 3, 5, 10, 15, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
"""The sizes the automatic choice picks from: 1s, 2s, 3s, 5s, 10s, 15s, 30s, 1m, 5m, 15m, 1h,
6h, 1d. Up to a minute each is at most twice the one before, so a burst of 5 s to 10
minutes gets at least 6 buckets (a size that shows it in more than 12 is followed by one
at most twice as large); from a minute on each is a multiple of the one before, which the
tally's coarser grouping relies on."""
MAX_AUTO_BUCKETS = 12
"""The automatic choice takes the smallest size that shows the span in at most this many
buckets: short enough to read as bars in a terminal or an issue."""
MAX_BUCKETS = 20_000
"""A guard against `--bucket 1s` over a month."""

FACETS: dict[str, Callable[[ErrorEvent], str | None]] = {
    "transaction": lambda e: e.transaction,
    "host": lambda e: e.host,
    "app": lambda e: e.app,
    "db": lambda e: e.db,
    "user": lambda e: e.user,
    "client": lambda e: e.client,
    "error_class": lambda e: e.error_class,
    "category": lambda e: combination_key(e.categories),
}
DEFAULT_FACETS = ("transaction", "host", "app", "db", "user", "client", "error_class")
"""Shown when `--facet` is not given, each only if some event has a value for it."""
NOT_SET = "(not set)"


@dataclasses.dataclass(frozen=True)
class TimelineOptions:
    bucket_seconds: int | None = None  # None: choose from the span
    align: str = "auto"  # auto | first | clock | a time
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    facets: tuple[str, ...] = ()  # empty: DEFAULT_FACETS that have values
    tz: dt.tzinfo = UTC  # for an --align time without a zone


def grouping_seconds(options: TimelineOptions) -> int:
    """How finely events are added up before the timeline sees them: per second, whatever
    the buckets, so that the shape (`events.shape`, read from the event times) is the same
    for every `--bucket`, and automatic buckets may be shorter than a minute.

    A group sits at its first member's time and keeps its last one (`ErrorEvent.last_ts`),
    so first/last times stay exact. Memory follows the seconds of the span that hold
    events; past `pipeline.MAX_GROUPS` groups a server log's tally regroups per minute or
    coarser (`coarser_grouping`)."""
    del options  # the grouping no longer depends on the display
    return 1


def _whole_minutes(options: TimelineOptions) -> bool:
    """The window and an --align time fall on whole minutes (a per-minute group then never
    straddles a bucket edge of a whole-minute bucket)."""
    moments = [options.since, options.until]
    align = options.align.strip().lower()
    if align not in ("auto", "first", "clock"):
        moments.append(parse_user_time(options.align, options.tz, "--align"))
    return all(m is None or (m.second == 0 and m.microsecond == 0) for m in moments)


# -- durations ----------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|hour|d|day)s?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_bucket(text: str) -> int:
    """`--bucket`: `1m`, `5m`, `1h`, also `30s`, `15min`, `1d`."""
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise InputError(f"--bucket {text!r} is not a duration (use e.g. 1m, 5m, 1h)")
    return int(match[1]) * _UNIT_SECONDS[match[2].lower()]


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_share(share: float) -> str:
    return f"{share * 100:.1f} %"


def _clock(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the grid -----------------------------------------------------------------------------------


def _floor(moment: dt.datetime, seconds: int) -> dt.datetime:
    epoch = moment.timestamp()
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _grid_start(anchor: dt.datetime, bucket: int, first: dt.datetime) -> dt.datetime:
    """The point `anchor + k * bucket` (k may be negative) at or before `first`."""
    k = math.floor((first - anchor).total_seconds() / bucket)
    return anchor + dt.timedelta(seconds=k * bucket)


def _anchor(
    options: TimelineOptions, grid: InputGrid | None, first: dt.datetime, bucket: int
) -> tuple[dt.datetime, str]:
    """Where the grid is pinned, and the sentence saying why."""
    align = options.align.strip().lower()
    if align == "clock":
        return dt.datetime.fromtimestamp(
            0, UTC
        ), f"on the clock (multiples of {format_duration(bucket)} in UTC)"
    if align == "first":
        return _floor(
            first, 60 if bucket >= 60 else 1
        ), "at the first event's minute (--align first)"
    if align != "auto":
        moment = parse_user_time(options.align, options.tz, "--align")
        return moment, f"on the grid through {_clock(moment)} (--align)"
    if options.since is not None:
        return (
            options.since,
            "on a grid from --since, as New Relic starts TIMESERIES buckets at the query window's start",
        )
    if grid is not None:
        return grid.begin, (
            f"on the input's own TIMESERIES grid (New Relic starts it at the query window's start, {_clock(grid.begin)})"
        )
    if bucket >= 3600:
        return dt.datetime.fromtimestamp(
            0, UTC
        ), f"on the clock (multiples of {format_duration(bucket)} in UTC)"
    return _floor(first, 60 if bucket >= 60 else 1), (
        f"at the first event's {'minute' if bucket >= 60 else 'second'}, as an APM chart whose window starts with "
        "the burst does (--align clock for round times, --since or --align TIME to choose)"
    )


def coarser_grouping(options: TimelineOptions, first: dt.datetime, last: dt.datetime) -> int | None:
    """A grouping coarser than the second that the timeline of events spanning at least
    `first`..`last` can take without moving an event to another bucket, or None. The
    automatic bucket for that span once it is an hour or more (it then sits on the clock,
    and every larger size of the ladder is a multiple of it); else the minute, when every
    bucket is whole minutes on a whole-minute grid. For inputs without their own grid
    (server logs): the pipeline's tally uses it when a long log has many seconds. The shape
    then reads per-minute groups spread over their first to last member."""
    align = options.align.strip().lower()
    if not _whole_minutes(options):
        return None
    if options.bucket_seconds is not None:
        return (
            60 if options.bucket_seconds % 60 == 0 and align in ("auto", "first", "clock") else None
        )
    if align not in ("auto", "clock"):
        return (
            60 if align == "first" and _choose_bucket(options, None, first, last)[0] >= 60 else None
        )
    size, _rule = _choose_bucket(options, None, first, last)
    if size >= 3600 and not (options.since is not None and options.since.timestamp() % size):
        return size
    return 60 if size >= 60 else None


def _bucket_count(start: dt.datetime, last: dt.datetime, bucket: int) -> int:
    return int((last - start).total_seconds() // bucket) + 1


def _choose_bucket(
    options: TimelineOptions, grid: InputGrid | None, first: dt.datetime, last: dt.datetime
) -> tuple[int, str]:
    if options.bucket_seconds is not None:
        rule = f"--bucket {format_duration(options.bucket_seconds)}"
        if grid and grid.bucket_seconds and options.bucket_seconds < grid.bucket_seconds:
            rule += (
                f" (finer than the input's own {format_duration(grid.bucket_seconds)} buckets: "
                "each input bucket's count sits at its start)"
            )
        return options.bucket_seconds, rule
    floor = grid.bucket_seconds if grid and grid.bucket_seconds else 1
    candidates = [size for size in BUCKET_LADDER if size >= floor and size % floor == 0] or [floor]
    for size in candidates:
        anchor, _why = _anchor(options, grid, first, size)
        start = _grid_start(anchor, size, options.since or first)
        if _bucket_count(start, options.until or last, size) <= MAX_AUTO_BUCKETS:
            break
    seconds = int((last - first).total_seconds())
    span = format_duration(seconds // 60 * 60 if seconds >= 60 else max(1, seconds))
    return size, (
        f"automatic: the smallest of {', '.join(format_duration(s) for s in BUCKET_LADDER)} that shows the {span} span in at most "
        f"{MAX_AUTO_BUCKETS} buckets (--bucket to choose)"
    )


# -- the incident -------------------------------------------------------------------------------


def build_incident(
    events: Sequence[ErrorEvent],
    *,
    options: TimelineOptions = TimelineOptions(),
    inputs: Sequence[InputSummary] = (),
    samples: Mapping[str, Sequence[SourceRef]] | None = None,
    family_samples: Mapping[str, Sequence[SourceRef]] | None = None,
    grid: InputGrid | None = None,
    server_log: ServerLogSummary | None = None,
    timezone_note: str | None = None,
    widths: Mapping[str, int | None] | None = None,
) -> Incident:
    """The `Incident` for classified events (each with its `categories` and `count`).
    `widths`: input path -> the width of its pre-counted buckets (New Relic TIMESERIES), so
    the shape spreads them over the time they cover (`events.shape.spans`)."""
    total = sum(e.count for e in events)
    by_category: Counter[str] = Counter()
    by_combination: Counter[str] = Counter()
    for event in events:
        by_combination[combination_key(event.categories)] += event.count
        for category in event.categories:
            by_category[category.value] += event.count
    common: dict[str, Any] = {
        "total": total,
        "by_category": _ordered(by_category),
        "by_combination": _ordered(by_combination),
        "facets": facet_rows(events, options.facets, total),
        "notes": interpret(events, total),
        "samples": {k: tuple(v) for k, v in (samples or {}).items()},
        "family_samples": {k: tuple(v) for k, v in (family_samples or {}).items()},
        "inputs": tuple(inputs),
        "server_log": server_log,
        "timezone_note": timezone_note,
    }
    if not events:
        return Incident(
            window_start=options.since,
            window_end=options.until,
            bucket_seconds=options.bucket_seconds or 0,
            buckets=(),
            shape=None,
            **common,
        )
    first = min(e.ts for e in events)
    last = max(e.last_ts or e.ts for e in events)
    bucket, bucket_rule = _choose_bucket(options, grid, first, last)
    anchor, why = _anchor(options, grid, first, bucket)
    start = _grid_start(anchor, bucket, options.since or first)
    if options.until is not None:
        count = max(1, math.ceil((options.until - start).total_seconds() / bucket))
    else:
        count = _bucket_count(start, last, bucket)
    if count > MAX_BUCKETS:
        raise InputError(
            f"--bucket {format_duration(bucket)} gives {count} buckets over this span; choose a larger one"
        )
    buckets = _buckets(events, start, bucket, count)
    return Incident(
        window_start=start,
        window_end=start + dt.timedelta(seconds=bucket * count),
        bucket_seconds=bucket,
        buckets=buckets,
        shape=shape_from_events(events, widths, [b.total for b in buckets]),
        first_event=first,
        last_event=last,
        bucket_rule=bucket_rule,
        alignment=f"buckets start {why}: {_clock(start)}",
        **common,
    )


def _ordered(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _buckets(
    events: Sequence[ErrorEvent], start: dt.datetime, bucket: int, count: int
) -> tuple[BucketCount, ...]:
    totals = [0] * count
    categories: list[Counter[str]] = [Counter() for _ in range(count)]
    families: list[Counter[str]] = [Counter() for _ in range(count)]
    for event in events:
        index = int((event.ts - start).total_seconds() // bucket)
        if not 0 <= index < count:
            continue  # outside an explicit --until; the pipeline filters these first
        totals[index] += event.count
        families[index][combination_key(event.categories)] += event.count
        for category in event.categories:
            categories[index][category.value] += event.count
    return tuple(
        BucketCount(
            start=start + dt.timedelta(seconds=i * bucket),
            total=totals[i],
            by_category=_ordered(categories[i]),
            by_combination=_ordered(families[i]),
        )
        for i in range(count)
    )


def facet_rows(
    events: Sequence[ErrorEvent], names: Iterable[str], total: int
) -> dict[str, tuple[FacetRow, ...]]:
    """Counts per value of each facet, largest first; events without a value count under
    "(not set)" so that every facet adds up to the total."""
    names = tuple(names)
    explicit = bool(names)
    for name in names:
        if name not in FACETS:
            raise InputError(f"--facet {name!r} is not a facet (use one of: {', '.join(FACETS)})")
    result: dict[str, tuple[FacetRow, ...]] = {}
    for name in names or DEFAULT_FACETS:
        value_of = FACETS[name]
        counts: Counter[str] = Counter()
        for event in events:
            counts[value_of(event) or NOT_SET] += event.count
        if not explicit and set(counts) <= {NOT_SET}:
            continue
        result[name] = tuple(
            FacetRow(value, n, n / total if total else 0.0) for value, n in _ordered(counts).items()
        )
    return result


# -- interpretation -----------------------------------------------------------------------------


def _note_kind(name: str | None) -> str | None:
    """Which of the transaction notes an event's name belongs to (`_TRANSACTION_NOTES`)."""
    if transactions.before_view(name):
        return "before_view"
    if transactions.in_view(name):
        return "in_view"
    return "worker" if transactions.kind(name) is TransactionKind.WORKER else None


def _names(counter: Counter[str], limit: int = 3) -> str:
    ranked = counter.most_common()
    shown = ", ".join(f"{transactions.short(name)} ({n})" for name, n in ranked[:limit])
    return shown + (f" and {len(ranked) - limit} more" if len(ranked) > limit else "")


def _of(n: int, total: int) -> str:
    return f"{n} of {total} events ({format_share(n / total)})"


_TRANSACTION_NOTES = (
    (
        "before_view",
        "before_view",
        "are named after a middleware",
        "New Relic names a web transaction after the last middleware entered until the view runs, so these "
        "requests failed before the view ran: while getting a database connection, not in a slow query. The "
        "name does not prove that this middleware issued the first query: with ATOMIC_REQUESTS Django opens the "
        "connection in the per-view transaction just before the view; CSRF_USE_SESSIONS, LoginRequiredMiddleware "
        "or a middleware reading request.user connect earlier.",
    ),
    (
        "in_view",
        "in_view",
        "are named after a view",
        "These requests reached the view before the failure.",
    ),
    (
        "worker",
        "worker_side",
        "are Celery tasks",
        "Worker side: the Celery processes compete with the web processes for the same slots.",
    ),
)
"""(transaction kind, note key, what the names are, what that means)."""


def interpret(events: Sequence[ErrorEvent], total: int) -> tuple[Note, ...]:
    """What the events say beyond their counts, each sentence with the events it speaks for.
    Hedged where the evidence is indirect: a transaction name says where the request was,
    not which line of code opened the connection."""
    if total == 0:
        return (
            Note(
                "no_events",
                "No connection-failure events in the input (or in the time window).",
                0,
                0.0,
            ),
        )
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    multi_attempt = mixed_attempts = exhausted = 0
    wording: Counter[str] = Counter()
    by_category: Counter[Category] = Counter()
    for event in events:
        kind = _note_kind(event.transaction)
        if kind:
            kinds[kind][event.transaction or ""] += event.count
        if _attempts(event.message) >= 2:
            multi_attempt += event.count
            if len(set(event.categories)) >= 2:
                mixed_attempts += event.count
        if any(c in SLOT_EXHAUSTION for c in event.categories):
            exhausted += event.count
            generation = reserved_wording(event.message)
            if generation:
                wording[generation] += event.count
        for category in set(event.categories):
            by_category[category] += event.count
    notes: list[Note] = []

    def add(key: str, n: int, text: str) -> None:
        notes.append(Note(key, text, n, n / total))

    if exhausted:
        add(
            "slot_exhaustion",
            exhausted,
            f"{_of(exhausted, total)} are the server refusing a connection for lack of a slot "
            "(too many clients, reserved slots, or a role or database limit).",
        )
    for kind, key, lead, meaning in _TRANSACTION_NOTES:
        n = sum(kinds[kind].values())
        if n:
            add(key, n, f"{_of(n, total)} {lead}: {_names(kinds[kind])}. {meaning}")
    if multi_attempt:
        mixed = f", {mixed_attempts} of them with two different refusals" if mixed_attempts else ""
        add(
            "multi_attempt",
            multi_attempt,
            f"{_of(multi_attempt, total)} record two or more connection attempts in one message{mixed}. One "
            "connect() call tried twice: libpq with sslmode=prefer (the default) retries without SSL after a "
            'refusal that comes before the SSL handshake ("too many clients"), and psycopg >= 3.1.13 tries '
            "every address of the host (>= 3.2.8 reports them all). Each attempt is a backend start on the "
            "server, so the server logs more refusals than the application reports errors.",
        )
    for era, n in sorted(wording.items()):
        if era == "pre16":
            text = (
                f'{_of(n, total)} use the wording "reserved for non-replication superuser connections": the '
                "server is PostgreSQL 15 or older, and the role connecting is not a superuser; only the "
                "superuser_reserved_connections slots (3 by default) were left."
            )
        else:
            text = (
                f'{_of(n, total)} use the PostgreSQL 16+ wording ("SUPERUSER attribute" or '
                '"pg_use_reserved_connections"): the role connecting lacks the privilege the remaining '
                "reserved slots require (superuser_reserved_connections, reserved_connections)."
            )
        add(f"reserved_wording_{era.replace('+', 'plus')}", n, text)
    if by_category[Category.POOL_TIMEOUT]:
        add(
            "pool_timeout",
            by_category[Category.POOL_TIMEOUT],
            f"{_of(by_category[Category.POOL_TIMEOUT], total)} are pool timeouts: the application's own pool "
            "(psycopg_pool, Django's pool) had no free connection within its timeout; the server may still have "
            "had free slots.",
        )
    pgbouncer = sum(n for c, n in by_category.items() if c.value.startswith("pgbouncer_"))
    if pgbouncer:
        add(
            "pgbouncer",
            pgbouncer,
            f"{_of(pgbouncer, total)} come from pgbouncer (max_client_conn, query_wait_timeout, server login): "
            "the pooler's limits, in front of the server's.",
        )
    other = by_category[Category.OTHER]
    if other:
        add(
            "unrecognised",
            other,
            f"{_of(other, total)} carry none of the known connection-failure wordings; the samples point "
            "to their rows.",
        )
    return tuple(notes)


def _attempts(message: str) -> int:
    """How many connection attempts one message records (a FATAL per attempt; psycopg
    >= 3.2.8 repeats the last one above its list)."""
    if "Multiple connection attempts failed" in message:
        return message.count("\n- host: ")
    return message.count("FATAL:")
