"""What PostgreSQL server logs tell beyond the rejections: client backends over time,
rejections by role, database and client, and the server version and reserved-slot setup
inferred from the wording.

Interface (the pipeline calls it once per run): the PostgreSQL log readers leave their
connection trace (`events.pglog.trace.ConnectionTrace`) in
`ReadStats.extra["connection_trace"]`; `summarise` turns the traces of all server-log
inputs, and the events they yielded, into one `ServerLogSummary`, or None when no input was
a server log.

The backend curve is a lower bound, and the summary says why in its caveats: sessions open
before the log began are seen only when they end; connections refused after
authentication log `connection authorized` but are not held; a restart or a rotated-away
part of the log hides sessions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from pgslots.events import taxonomy
from pgslots.events.model import BackendPoint, ErrorEvent, ServerLogSummary
from pgslots.events.pglog.trace import ConnectionTrace
from pgslots.events.sources import ReadStats

SERVER_LOG_FORMATS = frozenset({"pg-stderr", "pg-csvlog", "pg-jsonlog"})
MAX_POINTS = 1440  # per-minute points shown; longer logs are thinned to the highest per step


def summarise(stats: Sequence[ReadStats], events: Sequence[ErrorEvent]) -> ServerLogSummary | None:
    traces = [
        s.extra["connection_trace"]
        for s in stats
        if isinstance(s.extra.get("connection_trace"), ConnectionTrace)
    ]
    if not traces:
        return None
    server_events = [e for e in events if e.source.format in SERVER_LOG_FORMATS]
    points = _backends_over_time(traces)
    peak = max(points, key=lambda p: p.backends, default=None)
    peak_backends, peak_at = (peak.backends, peak.ts) if peak else (None, None)
    if (
        len(traces) == 1
        and traces[0].peak_at is not None
        and traces[0].peak >= (peak_backends or 0)
    ):
        peak_backends, peak_at = traces[0].peak, traces[0].peak_at  # to the second
    return ServerLogSummary(
        backends_over_time=tuple(points),
        peak_backends=peak_backends,
        peak_at=peak_at,
        backends_by=_backends_by(traces),
        rejections_by=_rejections_by(server_events),
        inferred_version=_version(traces, server_events),
        inferred_reserved=_reserved(server_events),
        caveats=tuple(_caveats(traces)),
    )


def _backends_over_time(traces: Sequence[ConnectionTrace]) -> list[BackendPoint]:
    """Per minute, the highest number of client backends seen held (summed over the logs
    given), plus the sessions whose start the log does not show but that certainly covered
    that whole minute."""
    per_minute: Counter[int] = Counter()
    for trace in traces:
        edges = sorted(trace.unseen_per_minute.items())
        level, index = 0, 0
        for minute in sorted(set(trace.per_minute) | {m for m, _ in edges}):
            while index < len(edges) and edges[index][0] <= minute:
                level = edges[index][1]
                index += 1
            per_minute[minute] += trace.per_minute.get(minute, 0) + level
    minutes = sorted(per_minute)
    if len(minutes) > MAX_POINTS:
        step = -(-len(minutes) // MAX_POINTS)
        minutes = [
            max(minutes[i : i + step], key=per_minute.__getitem__)
            for i in range(0, len(minutes), step)
        ]
    return [
        BackendPoint(dt.datetime.fromtimestamp(m * 60, dt.timezone.utc), per_minute[m])
        for m in minutes
    ]


def _backends_by(traces: Sequence[ConnectionTrace]) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for trace in traces:
        for facet, peaks in trace.facet_peaks.items():
            into = result.setdefault(facet, {})
            for value, (peak, _at) in peaks.items():
                into[value] = max(into.get(value, 0), peak)
    return {
        facet: dict(sorted(values.items(), key=lambda kv: -kv[1]))
        for facet, values in result.items()
    }


def _rejections_by(events: Sequence[ErrorEvent]) -> dict[str, dict[str, int]]:
    """Slot rejections (and every other FATAL, under category) by role, database, client,
    application and category; "(unknown)" where neither the line nor its pid told."""
    by: dict[str, Counter[str]] = {
        name: Counter() for name in ("category", "user", "db", "client", "app")
    }
    for event in events:
        categories = event.categories or taxonomy.classify(
            event.message, event.sqlstate, event.error_class
        )
        by["category"][taxonomy.combination_key(categories)] += event.count
        if not any(c.is_slot_exhaustion for c in categories):
            continue
        for name, value in (
            ("user", event.user),
            ("db", event.db),
            ("client", event.client),
            ("app", event.app),
        ):
            by[name][value or "(unknown)"] += event.count
    return {name: dict(counts.most_common()) for name, counts in by.items() if counts}


def _version(traces: Sequence[ConnectionTrace], events: Sequence[ErrorEvent]) -> str | None:
    """The version the server printed at startup, else the generation its wording shows."""
    versions = [v for trace in traces for v in trace.versions]
    if versions:
        return ", ".join(dict.fromkeys(versions))
    wordings = {taxonomy.reserved_wording(e.message) for e in events} - {None}
    if wordings == {"pre16"}:
        return "<= 15 (from the reserved-slot wording)"
    if wordings == {"16+"}:
        return ">= 16 (from the reserved-slot wording)"
    return None


def _reserved(events: Sequence[ErrorEvent]) -> tuple[str, ...]:
    """Sentences about the reserved-slot setup that the rejections prove (domain §1.2-1.3)."""
    said: list[str] = []
    counts: Counter[str] = Counter()
    roles: dict[str, set[str]] = {}
    for event in events:
        for category in event.categories or taxonomy.classify(event.message, event.sqlstate):
            counts[category.value] += event.count
            roles.setdefault(category.value, set()).add(event.user or "(unknown)")
        if "non-replication superuser connections" in event.message:
            counts["pre16_reserved"] += event.count
    if counts["pre16_reserved"]:
        said.append(
            "superuser_reserved_connections > 0 and the server is PostgreSQL <= 15: "
            f"{counts['pre16_reserved']} connections by non-superuser roles "
            f"({', '.join(sorted(roles.get('reserved_superuser', set())))}) met the superuser-reserved slots"
        )
    elif counts["reserved_superuser"]:
        said.append(
            "superuser_reserved_connections > 0 (PostgreSQL >= 16 wording): "
            f"{counts['reserved_superuser']} connections by roles without SUPERUSER met the last free slots"
        )
    if counts["reserved_role"]:
        said.append(
            "reserved_connections > 0 (PostgreSQL >= 16): "
            f"{counts['reserved_role']} connections by roles without pg_use_reserved_connections "
            f"({', '.join(sorted(roles.get('reserved_role', set())))}) were refused while those slots were left"
        )
    if counts["too_many_clients"]:
        said.append(
            f"every slot of max_connections was taken at times: {counts['too_many_clients']} "
            "'sorry, too many clients already' (superusers included)"
        )
    return tuple(said)


def _caveats(traces: Sequence[ConnectionTrace]) -> list[str]:
    notes = [
        "client backends are rebuilt from 'connection authorized' and 'disconnection' lines, in "
        "line order: a lower bound, never an exact count"
    ]
    refused = sum(t.refused_after_auth for t in traces)
    if refused:
        notes.append(
            f"{refused} connections were refused after authentication (they log 'connection authorized', "
            "then the FATAL, and never 'disconnection'); they are not counted as held"
        )
    unseen = sum(t.unseen_start for t in traces)
    if unseen:
        notes.append(
            f"{unseen} sessions ended without their start in the log (open before it began, or "
            "log_connections was off): counted only in the whole minutes they certainly covered, "
            "not in the per-user/database/application/client peaks"
        )
    open_at_end = sum(t.open_at_end for t in traces)
    if open_at_end:
        notes.append(f"{open_at_end} sessions were still open when the log ends")
    authorized = sum(t.authorized for t in traces)
    disconnections = sum(t.disconnections for t in traces)
    if authorized and not disconnections:
        notes.append(
            "no 'disconnection' line at all: log_disconnections looks off, so the curve only grows"
        )
    if not authorized and not disconnections:
        notes.append(
            "no connection lines: turn on log_connections and log_disconnections to see backends over time"
        )
    restarts = sum(max(t.restart_count - 1, 0) for t in traces)
    if restarts:
        notes.append(
            f"the server restarted {restarts} time(s) in the log: every session ends there"
        )
    reused = sum(t.reused_pid for t in traces)
    if reused:
        notes.append(
            f"{reused} sessions never logged their end (their pid was reused): counted as ended then"
        )
    if len(traces) > 1:
        notes.append(
            f"{len(traces)} server logs given: their backend counts are added up; give one format per server"
        )
    return notes
