"""Several sources of one incident, joined instead of stacked.

The APM, the application's logs and the server's log record the same failures from three
places: added up, a lab run's 126 failures became 252. Here each kind of source is read
apart (files of one kind are added up: a web log and a worker log are different processes),
the headline count is taken from the source closest to the application (`CLOSENESS`), and
every other source is matched to it by category and time: each of its failures is paired
with a headline failure of the same category within `TOLERANCE_SECONDS`. What is left over
is said, not added: a server log's refusals that no application failure accounts for are
listed by role (other clients, or failures the application did not record), and a second
refusal within one connect() (libpq's sslmode=prefer retry) is counted as a retry.

The headline incident takes the server log's summary (backends over time, refusals by role
and client, the inferred version) when it has none of its own: that is what the server log
adds.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pgslots.diagnosis import SourceAgreement
from pgslots.events.model import ErrorEvent, Incident
from pgslots.events.serverlog import SERVER_LOG_FORMATS
from pgslots.events.taxonomy import combination_key

TOLERANCE_SECONDS = 2.0
"""How far apart two sources may time the same failure: the server logs the refusal, the
APM the error a moment later; per-second grouping adds up to a second."""

KIND_OF_FORMAT = {
    "newrelic": "apm",
    "newrelic-csv": "apm",
    "sentry": "apm",
    "applog": "applog",
    "pgbouncer": "pgbouncer",
    **dict.fromkeys(SERVER_LOG_FORMATS, "server"),
}
CLOSENESS = ("apm", "applog", "pgbouncer", "server")
"""Source kinds, closest to the application first: the headline count is the first present."""
LABEL = {
    "apm": "APM",
    "applog": "application log",
    "pgbouncer": "pgbouncer log",
    "server": "server log",
}


@dataclasses.dataclass
class Source:
    """The files of one kind, read together."""

    kind: str
    paths: list[str]
    incident: Incident
    events: list[ErrorEvent]


def kind_of(format_name: str) -> str:
    return KIND_OF_FORMAT.get(format_name, "apm")


def by_closeness(sources: Iterable[Source]) -> list[Source]:
    return sorted(
        sources, key=lambda s: CLOSENESS.index(s.kind) if s.kind in CLOSENESS else len(CLOSENESS)
    )


# -- matching ---------------------------------------------------------------------------------

Unit = tuple[float, int, int]  # (epoch seconds, count, index of the event it belongs to)


def match(
    left: Sequence[Unit], right: Sequence[Unit], tolerance: float
) -> tuple[Counter[int], Counter[int]]:
    """Pair the counts of `right` with those of `left`, each pair at most `tolerance`
    seconds apart; (matched per left index, matched per right index). Greedy in time order,
    which pairs as many as possible when every unit has the same tolerance."""
    pending: list[list[Any]] = [[t, n, i] for t, n, i in sorted(left)]  # [time, count left, index]
    matched_left: Counter[int] = Counter()
    matched_right: Counter[int] = Counter()
    start = 0
    for t, n, j in sorted(right):
        while start < len(pending) and (
            pending[start][0] < t - tolerance or pending[start][1] == 0
        ):
            start += 1
        k = start
        while n and k < len(pending) and pending[k][0] <= t + tolerance:
            taken = min(n, pending[k][1])
            if taken:
                pending[k][1] -= taken
                n -= taken
                matched_left[pending[k][2]] += taken
                matched_right[j] += taken
            k += 1
    return matched_left, matched_right


def _units(
    events: Sequence[ErrorEvent], keys: Callable[[ErrorEvent], list[str]]
) -> dict[str, list[Unit]]:
    """Per matching key, the events' units (an event may give several keys: one per attempt)."""
    units: dict[str, list[Unit]] = defaultdict(list)
    for index, event in enumerate(events):
        for key in keys(event):
            units[key].append((event.ts.timestamp(), event.count, index))
    return units


def _attempts(event: ErrorEvent) -> list[str]:
    """The slot refusals one application failure stands for, one per connection attempt its
    message records (two when libpq retried without SSL, one per address for psycopg)."""
    slots = [c.value for c in event.categories if c.is_slot_exhaustion]
    if not slots:
        return []
    fatals = event.message.count("FATAL:")
    return slots + [slots[0]] * max(0, fatals - len(slots))


def _refusal(event: ErrorEvent) -> list[str]:
    return [c.value for c in event.categories if c.is_slot_exhaustion][:1]


def _family(event: ErrorEvent) -> list[str]:
    return [combination_key(event.categories)]


def _match_all(
    left: Sequence[ErrorEvent],
    right: Sequence[ErrorEvent],
    left_keys: Callable[[ErrorEvent], list[str]],
    right_keys: Callable[[ErrorEvent], list[str]],
) -> tuple[Counter[int], Counter[int]]:
    left_units, right_units = _units(left, left_keys), _units(right, right_keys)
    matched_left: Counter[int] = Counter()
    matched_right: Counter[int] = Counter()
    for key, units in right_units.items():
        got_left, got_right = match(left_units.get(key, []), units, TOLERANCE_SECONDS)
        matched_left.update(got_left)
        matched_right.update(got_right)
    return matched_left, matched_right


# -- agreement --------------------------------------------------------------------------------


def _paths(source: Source) -> str:
    return ", ".join(Path(p).name for p in source.paths)


def server_agreement(headline: Source, server: Source) -> SourceAgreement:
    """The server log's slot refusals against the application's failures."""
    app_failures = [e for e in headline.events if _attempts(e)]
    refusals = [e for e in server.events if _refusal(e)]
    matched_app, matched_server = _match_all(app_failures, refusals, _attempts, _refusal)
    total = sum(e.count for e in refusals)
    matched = sum(matched_server.values())
    reached = sum(min(e.count, matched_app[i]) for i, e in enumerate(app_failures))
    retries = matched - reached
    unmatched: Counter[str] = Counter()
    for j, event in enumerate(refusals):
        left = event.count - matched_server[j]
        if left:
            unmatched[event.user or "(unknown role)"] += left
    failures = sum(e.count for e in app_failures)
    who = LABEL[headline.kind]
    parts = [
        f"{total} refusals in the server log ({_paths(server)}); {reached} reached the application ({who})"
    ]
    if retries:
        parts.append(
            f"{retries} were second attempts of the same connect() (libpq's sslmode=prefer retry without "
            "SSL, or one attempt per address): one failure in the application, two refusals in the log"
        )
    if unmatched:
        roles = ", ".join(f"role {role} {n}" for role, n in unmatched.most_common())
        parts.append(
            f"{sum(unmatched.values())} never reached the application's failures ({roles}): other clients, "
            f"or failures the {who} did not record"
        )
    if failures > reached:
        parts.append(
            f"{failures - reached} of the {who}'s {failures} slot failures have no refusal in the server log "
            f"within {TOLERANCE_SECONDS:g} s (another server, or a log that does not cover them)"
        )
    return SourceAgreement(
        source=LABEL[server.kind],
        paths=tuple(server.paths),
        events=total,
        matched=matched,
        reached=reached,
        retries=retries,
        unmatched_by=dict(unmatched.most_common()),
        headline_unmatched=max(0, failures - reached),
        tolerance_seconds=TOLERANCE_SECONDS,
        text="; ".join(parts) + ".",
    )


def app_agreement(headline: Source, other: Source) -> SourceAgreement:
    """An application-side source (application log, pgbouncer log, another APM) against the
    headline's failures, by message family."""
    _matched_head, matched_other = _match_all(headline.events, other.events, _family, _family)
    total = sum(e.count for e in other.events)
    matched = sum(matched_other.values())
    who, what = LABEL[headline.kind], LABEL[other.kind]
    text = f"{total} failures in the {what} ({_paths(other)}); {matched} of them are among the {who}'s {headline.incident.total}"
    if total > matched:
        text += f"; {total - matched} are not in the {who} (same wording within {TOLERANCE_SECONDS:g} s)"
    return SourceAgreement(
        source=what,
        paths=tuple(other.paths),
        events=total,
        matched=matched,
        reached=matched,
        headline_unmatched=max(0, headline.incident.total - matched),
        tolerance_seconds=TOLERANCE_SECONDS,
        text=text + ".",
    )


def join(sources: Sequence[Source]) -> tuple[Incident, tuple[SourceAgreement, ...]]:
    """The headline incident (the closest source's, with the server log's summary) and how
    each other source agrees with it."""
    ordered = by_closeness(sources)
    headline = ordered[0]
    agreements = tuple(
        server_agreement(headline, other)
        if other.kind == "server"
        else app_agreement(headline, other)
        for other in ordered[1:]
    )
    incident = headline.incident
    server = next((s for s in ordered if s.kind == "server"), None)
    if (
        incident.server_log is None
        and server is not None
        and server.incident.server_log is not None
    ):
        incident = dataclasses.replace(incident, server_log=server.incident.server_log)
    return incident, agreements
