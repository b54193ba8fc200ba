"""The fast path of the stderr reader: a `ServerLogState` fed from a whole chunk's matches.

A log of an incident is mostly connection lines, so reading it line by line in Python
(a `match` and a method call per line) costs microseconds per line. Here one `findall` of
the prefix's chunk pattern (`LinePrefix.bulk`) reads every line that matters in C, and one
flat loop applies them: the same transitions as `ServerLogState.received`, `authorized`,
`disconnection`, `fatal` and `restart`, with the state in local variables. A `connection
received` and a disconnection each have their own group (a third and a quarter of the rows
of an incident's log: told apart without looking at text); the other messages repeat (a
few users, databases, applications), so each distinct one is parsed once and its meaning
cached. Rare lines (walsenders, restarts, lines not understood, reused pids) go through
the state's own methods.

`pglog.scan.StderrScanner.scan_lines` is the per-line reference that this loop must agree
with exactly; `tests/test_pglog_fast_path.py` checks that on real logs and generated ones.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pgslots.events.pglog import lines as msg
from pgslots.events.pglog.trace import ServerLogState, Value, _unknown_to_none, known

if TYPE_CHECKING:
    from pgslots.events.pglog.ranges import RangeState

# The meanings of a `log` group, as `meaning` caches them: (kind, values...).
RECEIVED, AUTHORIZED, UNREAD_AUTHORIZED, DISCONNECTION, REPLICATION, STARTING, READY = range(7)
DEFERRED_AUTHORIZED, DEFERRED_FATAL = 7, 8  # lines a range's state must decide on (see `feed`)
_MISSING: Any = object()  # typed Any: `pending.pop(pid, _MISSING)` stays a Value to mypy


def meaning(log: bytes) -> tuple[Any, ...]:
    """What a `log` group says, parsed once per distinct text."""
    if log.startswith(msg.AUTHORIZED):
        parsed = msg.authorized(log.rstrip(b"\r"))
        if parsed is None:
            return (UNREAD_AUTHORIZED,)
        return (
            AUTHORIZED,
            parsed[0],
            parsed[1],
            known(parsed[2]),
            {},
        )  # the last: client -> session entry
    if log.startswith(msg.REPLICATION_AUTHORIZED):
        return (REPLICATION,)
    if log.startswith(msg.STARTING):
        return (STARTING, msg.server_version(log))
    return (READY,)


class Fields:
    """Where a chunk pattern's groups sit in `findall`'s tuples (`at` a field the prefix
    lacks reads a trailing b"")."""

    def __init__(self, groupindex: Mapping[str, int]) -> None:
        self.absent = len(groupindex)  # index of the b"" that `row + (b"",)` ends with

        def at(name: str) -> int:
            return groupindex[name] - 1 if name in groupindex else self.absent

        (
            self.sec,
            self.frac,
            self.zone,
            self.pid,
            self.received,
            self.disconnection,
            self.log,
            self.fatal,
        ) = (
            at(name)
            for name in ("sec", "frac", "zone", "pid", "received", "disconnection", "log", "fatal")
        )
        self.has_client = "host" in groupindex or "remote" in groupindex
        self.client: Callable[[tuple[bytes, ...]], tuple[bytes, ...]] = operator.itemgetter(
            at("host"), at("remote")
        )
        self.session: Callable[[tuple[bytes, ...]], tuple[bytes, ...]] = operator.itemgetter(
            *(at(name) for name in ("user", "db", "app", "sqlstate", "host", "remote"))
        )


def second_text(sec: bytes, zone: bytes) -> bytes:
    """The `Clock` key of a second: `2026-11-25 14:45:28 UTC`, or epoch seconds for %n."""
    return sec + b" " + zone if zone else sec


def client_of(host: bytes, remote: bytes) -> bytes | None:
    """The client address a prefix shows (%h, or %r without its port), if any."""
    return host or (remote.partition(b"(")[0] if remote else None)


class Applied:
    """What `feed` leaves for the caller to finish: the rows whose line number it needs."""

    def __init__(self, examples: int) -> None:
        self.new_groups: list[
            tuple[list[Any], tuple[bytes, ...]]
        ] = []  # (FATAL group, its first row)
        self.skipped = 0
        self.examples: list[tuple[tuple[bytes, ...], str]] = []  # (row, why), the first `room`
        self.room = examples

    def skip(self, row: tuple[bytes, ...], why: str) -> None:
        self.skipped += 1
        if len(self.examples) < self.room:
            self.examples.append((row, why))


def feed(
    state: ServerLogState,
    rows: Sequence[tuple[bytes, ...]],
    fields: Fields,
    cache: dict[bytes, tuple[Any, ...]],
    examples: int,
    text_of: Callable[[tuple[bytes, ...]], bytes],
) -> Applied:
    """Apply a chunk's `findall` rows to `state`, in file order; keep the first `examples`
    skipped rows. `text_of(row)` gives a row's message text, for the few disconnections
    whose session time is needed.

    A `pglog.ranges.RangeState` (one byte range of a log read apart from the lines before
    it) has `marks` set until its first restart: then every line whose pid the range has
    not seen connect, or that is `deferred`, goes through the state's methods, which know
    what depends on the lines before the range."""
    applied = Applied(examples)
    trace = state.trace
    sessions, pending, ended_by_fatal = state.sessions, state.pending, state.ended_by_fatal
    walsender_pids, deferred, marks = state.walsender_pids, state.deferred, state.marks
    max_pending, max_sessions = state.max_pending, state.max_sessions
    slot_level, slot_peak, slot_peak_at = state._slot_level, state._slot_peak, state._slot_peak_at
    sec_at, zone_at, pid_at, log_at, fatal_at = (
        fields.sec,
        fields.zone,
        fields.pid,
        fields.log,
        fields.fatal,
    )
    received_at, disconnection_at = fields.received, fields.disconnection
    has_client, client_fields, session_fields = fields.has_client, fields.client, fields.session
    absent = (b"",)
    groups, unknown = state.groups, _unknown_to_none
    level, high, peak = state._level, state._minute_high, trace.peak
    ts, valid, bucket = state._second_ts, state._second_valid, state._bucket
    last_sec = last_zone = None
    received = authorized = disconnections = ended_seen = reused = 0
    fatal_lines = refused = correlated = bad_time = 0
    client: Value
    user: Value
    db: Value
    app: Value
    fatal: bytes | None
    seen: tuple[Any, ...]
    for row in rows:
        sec, zone, pid = row[sec_at], row[zone_at], row[pid_at]
        if sec != last_sec or zone != last_zone:
            if not sec:  # a line that is no log line (the only rows without a time)
                applied.skip(row, "not a log line for this log_line_prefix")
                continue
            last_sec, last_zone = sec, zone
            state._level, state._minute_high, trace.peak = level, high, peak
            valid = state.at(second_text(sec, zone))
            high, ts, bucket = state._minute_high, state._second_ts, state._bucket
        client = row[received_at]
        if client:  # as ServerLogState.received, when no earlier process of this pid is left
            kind = RECEIVED
            if (
                pid not in sessions
                and len(pending) < max_pending
                and not (deferred and pid in deferred)
            ):
                received += 1
                if ended_by_fatal:
                    ended_by_fatal.discard(pid)
                if walsender_pids:
                    walsender_pids.discard(pid)
                pending.pop(pid, None)
                pending[pid] = client
                if marks is not None:  # a range's state: this pid connected in the range
                    try:
                        marks[int(pid)] = 1
                    except (IndexError, ValueError):
                        cast("RangeState", state).mark(pid)  # marks are set on a range's state only
                continue
            fatal = None
        else:
            log = row[log_at]
            fatal = None
            if log:
                hit = cache.get(log)
                if hit is None:
                    hit = cache[log] = meaning(log)
                seen = hit
                kind = seen[0]
                if kind == AUTHORIZED:
                    client = pending.pop(pid, _MISSING)
                    if client is _MISSING:
                        client = None
                        if marks is not None:  # a connection whose start this range did not see
                            kind = DEFERRED_AUTHORIZED
                    if kind == AUTHORIZED:
                        authorized += 1
                        if ended_by_fatal:
                            ended_by_fatal.discard(pid)
                        if walsender_pids:
                            walsender_pids.discard(pid)
                        if has_client:
                            client = known(client_of(*client_fields(row + absent))) or client
                        old = sessions.pop(pid, None)
                        if old is not None:
                            reused += 1
                            level -= 1
                            for slot in old[1]:
                                slot_level[slot] -= 1
                        if len(sessions) >= max_sessions:
                            state._level = level
                            state.forget_oldest()
                            level = state._level
                        entry = seen[4].get(client)
                        if entry is None:
                            entry = seen[4][client] = state.entry(
                                (seen[1], seen[2], seen[3], client)
                            )
                        sessions[pid] = entry
                        level += 1
                        if level > high:
                            high = level
                            if level > peak:
                                peak = level
                                trace.peak_at = ts
                        for slot in entry[1]:
                            now = slot_level[slot] = slot_level[slot] + 1
                            if now > slot_peak[slot]:
                                slot_peak[slot] = now
                                slot_peak_at[slot] = ts
                        continue
            elif row[disconnection_at]:
                kind = DISCONNECTION
                disconnections += 1
                if pid in ended_by_fatal:
                    ended_by_fatal.discard(pid)
                    continue
                if walsender_pids and pid in walsender_pids:
                    walsender_pids.discard(pid)
                    continue
                entry = sessions.pop(pid, None)
                if entry is not None:
                    ended_seen += 1
                    level -= 1
                    for slot in entry[1]:
                        slot_level[slot] -= 1
                    continue
                disconnections -= 1  # counted again by the method
            else:
                fatal, kind = row[fatal_at], None
        if fatal:  # as ServerLogState.fatal does
            user, db, app, sqlstate, host, remote = session_fields(row + absent)
            client = client_of(host, remote) if has_client else None
            entry = sessions.pop(pid, None)
            if entry is None and marks is not None and pid not in pending:
                kind = DEFERRED_FATAL  # this range did not see the pid connect: the method decides
            else:
                fatal_lines += 1
                user, db, app, client = (
                    unknown(user, user),
                    unknown(db, db),
                    unknown(app, app),
                    unknown(client, client),
                )
                if entry is not None:
                    refused += 1
                    level -= 1
                    for slot in entry[1]:
                        slot_level[slot] -= 1
                    ended_by_fatal.add(pid)
                    if user is None or db is None or app is None or client is None:
                        correlated += 1
                        key = entry[0]
                        user, db, app, client = (
                            user or key[0],
                            db or key[1],
                            app or key[2],
                            client or key[3],
                        )
                elif pid in pending:
                    waiting = pending.pop(pid)
                    if client is None and waiting is not None:
                        correlated += 1
                        client = waiting
                if not valid:
                    bad_time += 1
                    continue
                key = (bucket, fatal.rstrip(b"\r"), user, db, app, client, sqlstate or None)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = [1, None, ts, ts]
                    applied.new_groups.append((group, row))
                else:
                    group[0] += 1
                    if ts > group[3]:
                        group[3] = ts
                    elif ts < group[2]:
                        group[2] = ts
                continue
        # The rare lines: through the state's own methods, with the state in its fields.
        state._level, state._minute_high, trace.peak = level, high, peak
        if kind == DISCONNECTION:
            if state.disconnection(pid):
                state.unseen_session(msg.disconnection(text_of(row)))
        elif kind == RECEIVED:
            state.received(pid, client)
        elif kind == DEFERRED_AUTHORIZED:
            client = known(client_of(*client_fields(row + absent))) if has_client else None
            state.authorized(pid, seen[1], seen[2], seen[3], client)
        elif kind == DEFERRED_FATAL:
            assert fatal is not None  # DEFERRED_FATAL is only set on a FATAL line
            group = state.fatal(pid, fatal.rstrip(b"\r"), sqlstate, user, db, app, client)
            if group is not None:
                applied.new_groups.append((group, row))
        elif kind == UNREAD_AUTHORIZED:
            applied.skip(row, "connection authorized line not understood")
        elif kind == REPLICATION:
            state.replication(pid)
        elif kind == STARTING:
            if seen[1]:
                state.version(seen[1])
        elif kind == READY:
            state.restart()
        level, high, peak, marks = state._level, state._minute_high, trace.peak, state.marks
    state._level, state._minute_high, trace.peak = level, high, peak
    trace.received += received
    trace.authorized += authorized
    trace.disconnections += disconnections
    trace.ended_seen += ended_seen
    trace.reused_pid += reused
    trace.fatal_lines += fatal_lines
    trace.refused_after_auth += refused
    trace.correlated += correlated
    trace.bad_time += bad_time
    return applied
