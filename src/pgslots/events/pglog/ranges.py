"""A byte range of a stderr log read apart from the lines before it, and stitched back.

Why: the reader spends about a microsecond per line in CPython, on one core; cutting a large
plain log into byte ranges (`pglog.workers.plan`) lets other processes read the later ones at the same
time. What makes that hard is the per-pid state: a range does not know which sessions were
open, which connections were waiting (`connection received`, for the client of their
FATAL) and which pids had been refused or were walsenders when it starts. So the later
ranges are read by a `RangeState`, which starts empty and keeps apart everything that
depends on what came before, and `stitch` replays that, in order, on the real state that
the ranges before it left. The result is the sequential one exactly: same events (grouped
per chunk as the sequential reader flushes them, with the same first lines), same counters,
same backend curve and peaks (`tests/test_pglog_fast_path.py` compares them).

What depends on the past, and how it is kept:

* A pid the range has not seen connect (its `connection received`) is *deferred*: its
  lines (an authorization, disconnection, FATAL or walsender start) are recorded as
  `Dependent`s, replayed by `stitch` with `ServerLogState`'s own methods, until the pid's
  next `connection received` (a new process: nothing of the old one is left) or restart.
  At the boundary these are the few connections in flight, and later ones, sessions that
  outlive it.
* A pid the range saw connect is known from there on, on the assumption that no earlier
  session of that pid was still open (it would have ended when the pid connected again:
  `ServerLogState.new_process`); `marks` remembers those pids (until the first restart),
  and `stitch` checks the assumption: if such a pid did hold a session (its end was not
  logged), the range is read again in order.
* Levels: the backend level is the range's own sessions (local) plus those of the past and
  of deferred pids (kept in the real state). The latter change only at `Dependent`s, so
  between two of them (a `Segment`) the difference is constant; each segment keeps the
  highest local level per minute, its peak (and when it was first reached) and per-facet
  peaks, and `stitch` adds the difference back.
* The first restart in a range ends everything before it: from there on, nothing depends.
* More than a quarter of `MAX_SESSIONS` open sessions (or `MAX_PENDING` waiting
  connections) on either side of a boundary: read in order, so that the oldest-first
  forgetting behaves as in one pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from pgslots.events.model import ErrorEvent
from pgslots.events.pglog.clock import Clock
from pgslots.events.pglog.trace import (
    MAX_PENDING,
    MAX_SESSIONS,
    ConnectionTrace,
    ServerLogState,
    SessionKey,
    Value,
    known,
)

MARKED_PIDS = 1 << 22  # Linux's highest pid_max: pids below it are marked in a bytearray
ADDED_COUNTERS = (
    "received",
    "authorized",
    "disconnections",
    "ended_seen",
    "refused_after_auth",
    "unseen_start",
    "ended_by_restart",
    "reused_pid",
    "walsenders",
    "fatal_lines",
    "bad_time",
    "correlated",
    "restart_count",
)


class ReadInOrder(Exception):
    """This range cannot be stitched exactly: read it in order after the ones before it."""


@dataclasses.dataclass
class Dependent:
    """A line of a range whose effect depends on the lines before the range."""

    kind: str  # "received", "authorized", "disconnection", "fatal", "replication", "restart"
    pid: Any
    args: tuple[Any, ...]
    ts: dt.datetime | None
    bucket: Any
    valid: bool
    level: int  # the range's own backend level just before the line
    slots_made: int  # the range's facet slots created before it
    slot_levels: tuple[int, ...] = ()  # authorized: the range's own level per facet slot then
    seconds: float | None = None  # disconnection: its session time (read only if needed)
    placeholder: tuple[str, int] | None = None  # fatal: the key its group has until stitched


@dataclasses.dataclass
class Segment:
    """The range's own levels between two `Dependent`s (the sampled highs: at each
    session's start and each minute's first line)."""

    minutes: list[tuple[int, int]]  # (epoch minute, highest local level in it)
    peak: int
    peak_at: dt.datetime | None  # None: no session started in the segment
    slot_peaks: dict[int, tuple[int, dt.datetime]]  # local facet slot -> (peak, first reached)


@dataclasses.dataclass
class RangeResult:
    """What a range's reader hands back to `stitch` (picklable: it comes from a worker)."""

    lines: int
    records: int
    skipped: int
    skip_examples: list[tuple[int | None, str]]
    trace: ConnectionTrace
    dependents: list[Dependent]
    segments: list[Segment]
    slots: list[tuple[int, Value]]  # local facet slot -> (facet, value)
    sessions: list[tuple[Any, SessionKey]]  # still open at the end: pid, session key
    pending: list[tuple[Any, Value]]
    ended_by_fatal: set[Any]
    walsender_pids: set[Any]
    unseen_edges: Counter[int]
    batches: int  # chunks whose FATAL groups (in order, some keys placeholders) are pickled in the spill file
    unknown_zones: set[str]
    last: tuple[dt.datetime | None, Any, bool]  # the last line's (ts, bucket, valid)
    unsure: bool  # lines without a readable time before the first with one: read in order


class RangeState(ServerLogState):
    """A `ServerLogState` for a range read apart: see the module's docstring."""

    def __init__(
        self, fmt: str, path: str, clock: Clock, group_seconds: int, spill: IO[bytes]
    ) -> None:
        super().__init__(fmt, path, clock, group_seconds)
        self.spill = spill  # each chunk's groups, pickled: memory stays flat however long the range
        self.marks: bytearray | None = bytearray(MARKED_PIDS)  # None from the first restart on
        self._marked = self.marks  # kept past it, for `marked`
        self.big_marks: set[Any] = set()
        self.dependents: list[Dependent] = []
        self.segments: list[Segment] = []
        self.batches = 0
        self.max_sessions = MAX_SESSIONS // 4
        self.max_pending = MAX_PENDING // 4
        self._minutes: list[tuple[int, int]] = []
        self._awaiting_time: Dependent | None = None
        self.unsure = False  # a line without a readable time before the first one with

    # -- what depends ------------------------------------------------------------------------

    def mark(self, pid: Any) -> None:
        """`pid` connected in this range (called for each `connection received`)."""
        try:
            self.marks[int(pid)] = 1  # type: ignore[index]
        except (IndexError, ValueError):
            self.big_marks.add(pid)

    def marked(self, pids: Iterable[Any]) -> set[Any]:
        """Those of `pids` that connected in this range before its first restart."""
        return {pid for pid in pids if not self._unseen(pid)}

    def depends(self, pid: Any) -> bool:
        """Whether a line of `pid` depends on the lines before the range."""
        if self.marks is None:
            return False
        return pid in self.deferred or self._unseen(pid)

    def _unseen(self, pid: Any) -> bool:
        try:
            return not self._marked[int(pid)]
        except (IndexError, ValueError):
            return pid not in self.big_marks

    def _record(self, kind: str, pid: Any, *args: Any, **extra: Any) -> Dependent:
        found = Dependent(
            kind,
            pid,
            args,
            self._second_ts,
            self._bucket,
            self._second_valid,
            self._level,
            len(self._slot_level),
            **extra,
        )
        self.dependents.append(found)
        self.cut()
        if pid is not None:
            self.deferred.add(pid)
        return found

    def cut(self) -> None:
        """End the current segment (its samples), start the next one with none."""
        self._end_minute()
        trace = self.trace
        peaks = {
            slot: (peak, at)
            for slot, (peak, at) in enumerate(zip(self._slot_peak, self._slot_peak_at, strict=True))
            if at is not None
        }
        self.segments.append(Segment(self._minutes, trace.peak, trace.peak_at, peaks))
        self._minutes = []
        self._minute_high = -1
        trace.peak, trace.peak_at = 0, None
        self._slot_peak[:] = [0] * len(self._slot_peak)
        self._slot_peak_at[:] = [None] * len(self._slot_peak_at)

    def _end_minute(self) -> None:
        if self._minute is not None and self._minute_high >= 0:
            self._minutes.append((self._minute, self._minute_high))

    def at(self, second: Any) -> bool:
        valid = super().at(second)
        if not valid and self._second_ts is None:
            self.unsure = True
        return valid

    # -- the lines, deferred when they depend --------------------------------------------------

    def received(self, pid: Any, client: Value) -> None:
        if self.marks is not None:
            if pid in self.deferred:
                self._record("received", pid)  # ends what the pid's earlier process left
                self.deferred.discard(pid)
            self.mark(pid)
        super().received(pid, client)

    def authorized(self, pid: Any, user: Value, db: Value, app: Value, client: Value) -> None:
        if self.depends(pid):
            self._record(
                "authorized", pid, user, db, app, client, slot_levels=tuple(self._slot_level)
            )
        else:
            super().authorized(pid, user, db, app, client)

    def disconnection(self, pid: Any) -> bool:
        if self.depends(pid):
            self._awaiting_time = self._record("disconnection", pid)
            return True  # the caller reads its session time for `unseen_session`
        return super().disconnection(pid)

    def unseen_session(self, seconds: float | None) -> None:
        if self._awaiting_time is not None:
            self._awaiting_time.seconds, self._awaiting_time = seconds, None
        else:
            super().unseen_session(seconds)

    def fatal(self, pid: Any, *fields: Value) -> list[Any] | None:
        if not self.depends(pid):
            return super().fatal(pid, *fields)
        found = self._record("fatal", pid, *fields)
        if not self._second_valid:
            return None
        found.placeholder = ("?", len(self.dependents))
        group = self.groups[found.placeholder] = [1, None, self._second_ts, self._second_ts]
        return group

    def replication(self, pid: Any) -> None:
        if self.depends(pid):
            self._record("replication", pid)
        else:
            super().replication(pid)

    def restart(self) -> None:
        if self.marks is None:
            super().restart()
            return
        self._record("restart", None)  # the first: it ends everything before the range
        for entry in self.sessions.values():
            self._close(entry)
        self.trace.ended_by_restart += len(self.sessions)
        for kept in (
            self.sessions,
            self.pending,
            self.ended_by_fatal,
            self.walsender_pids,
            self.deferred,
        ):
            kept.clear()
        self.marks = None

    def forget_oldest(self) -> None:
        raise ReadInOrder("too many sessions open at once")

    def too_many_pending(self) -> None:
        raise ReadInOrder("too many connections waiting")

    def flush(self) -> Iterator[ErrorEvent]:
        """Keep the chunk's groups as they are (some keys are placeholders until stitched)."""
        groups, self.groups = self.groups, {}
        pickle.dump(list(groups.items()), self.spill, pickle.HIGHEST_PROTOCOL)
        self.batches += 1
        return iter(())

    def result(
        self, lines: int, records: int, skipped: int, skip_examples: list[tuple[int | None, str]]
    ) -> RangeResult:
        self.cut()
        self.spill.flush()
        slots = [key for key, _slot in sorted(self._slot_of.items(), key=lambda item: item[1])]
        return RangeResult(
            lines=lines,
            records=records,
            skipped=skipped,
            skip_examples=skip_examples,
            trace=self.trace,
            dependents=self.dependents,
            segments=self.segments,
            slots=slots,
            sessions=[(pid, entry[0]) for pid, entry in self.sessions.items()],
            pending=list(self.pending.items()),
            ended_by_fatal=self.ended_by_fatal,
            walsender_pids=self.walsender_pids,
            unseen_edges=self._unseen_edges,
            batches=self.batches,
            unknown_zones=self.clock.unknown_zones,
            last=(self._second_ts, self._bucket, self._second_valid),
            unsure=self.unsure,
        )


# -- stitching ---------------------------------------------------------------------------------


def stitch(
    state: ServerLogState,
    result: RangeResult,
    line_base: int,
    marked: Callable[[set[Any]], set[Any]],
    spill: IO[bytes],
) -> Iterator[dict[Any, list[Any]]]:
    """Apply a range's result to `state`, the real state where the range begins; returns
    the range's FATAL groups per chunk, read from its `spill` file (keys resolved, lines
    counted from the file's start), for `state.flush` to turn into events. `marked(pids)`
    asks the range which of `pids` it saw connect. Raises `ReadInOrder` (leaving `state`
    untouched) when the range's assumptions do not hold."""
    if result.unsure:
        raise ReadInOrder("lines without a readable time where the range begins")
    if len(state.sessions) >= MAX_SESSIONS // 4 or len(state.pending) >= MAX_PENDING // 4:
        raise ReadInOrder("too many sessions open at the boundary")
    deferred = {d.pid for d in result.dependents}
    carried = (
        set(state.sessions) | set(state.pending) | state.ended_by_fatal | state.walsender_pids
    ) - deferred
    reconnected = marked(carried) if carried else set()
    if reconnected & state.sessions.keys():
        raise ReadInOrder("a pid connected again while its earlier session had not ended")
    for pid in reconnected:
        state.new_process(pid)  # no session to end: only flags and a waiting connection

    state._end_minute()
    state._minute = state._second = None
    slot_map: list[int] = []
    keys: dict[Any, tuple[Any, ...] | None] = {}
    for index, segment in enumerate(result.segments):
        dependent = result.dependents[index] if index < len(result.dependents) else None
        _map_slots(
            state, result.slots, slot_map, dependent.slots_made if dependent else len(result.slots)
        )
        _apply_segment(state, segment, slot_map)
        if dependent is not None:
            key = _replay(state, dependent, slot_map)
            if dependent.placeholder is not None:
                keys[dependent.placeholder] = key
    _add_rest(state, result)
    return (_resolved(batch, keys, line_base) for batch in _spilled(spill, result.batches))


def _spilled(spill: IO[bytes], count: int) -> Iterator[list[tuple[Any, list[Any]]]]:
    spill.seek(0)
    for _ in range(count):
        yield pickle.load(spill)


def _map_slots(
    state: ServerLogState, slots: list[tuple[int, Value]], slot_map: list[int], upto: int
) -> None:
    """Give the range's facet slots made so far their slot in `state` (made there in the
    same order as one pass would)."""
    slot_map += [state.slot(facet, value) for facet, value in slots[len(slot_map) : upto]]


def _apply_segment(state: ServerLogState, segment: Segment, slot_map: list[int]) -> None:
    """The segment's samples, each raised by the sessions `state` holds meanwhile."""
    trace, held = state.trace, state._level
    for minute, high in segment.minutes:
        trace.per_minute[minute] = max(trace.per_minute.get(minute, 0), high + held)
    if segment.peak_at is not None and segment.peak + held > trace.peak:
        trace.peak, trace.peak_at = segment.peak + held, segment.peak_at
    levels, peaks, peaks_at = state._slot_level, state._slot_peak, state._slot_peak_at
    for local, (peak, at) in segment.slot_peaks.items():
        slot = slot_map[local]
        if peak + levels[slot] > peaks[slot]:
            peaks[slot], peaks_at[slot] = peak + levels[slot], at


def _replay(
    state: ServerLogState, dependent: Dependent, slot_map: list[int]
) -> tuple[Any, ...] | None:
    """One `Dependent` on the real state, as one pass would have applied it; the group key
    of a FATAL."""
    if dependent.ts is not None:
        state._second_ts, state._bucket = dependent.ts, dependent.bucket
    state._second_valid = dependent.valid
    kind, pid = dependent.kind, dependent.pid
    if kind == "received":
        state.new_process(pid)
    elif kind == "authorized":
        _replay_authorized(state, dependent, slot_map)
    elif kind == "disconnection":
        if state.disconnection(pid):
            state.unseen_session(dependent.seconds)
    elif kind == "fatal":
        return state.fatal_key(pid, *dependent.args)
    elif kind == "replication":
        state.replication(pid)
    else:
        state.restart()
    return None


def _replay_authorized(state: ServerLogState, dependent: Dependent, slot_map: list[int]) -> None:
    """`ServerLogState.authorized`, with the session's start sampled at the level it had:
    the real state's sessions plus the range's own at that moment."""
    user, db, app, client = dependent.args
    trace = state.trace
    trace.authorized += 1
    state.ended_by_fatal.discard(dependent.pid)
    state.walsender_pids.discard(dependent.pid)
    client = known(client) or state.pending.pop(dependent.pid, None)
    old = state.sessions.pop(dependent.pid, None)
    if old is not None:
        trace.reused_pid += 1
        state._close(old)
    entry = state.sessions[dependent.pid] = state.entry((user, db, known(app), client))
    state._level += 1
    level, ts = state._level + dependent.level, state._second_ts
    if ts is not None:
        minute = int(ts.timestamp()) // 60
        trace.per_minute[minute] = max(trace.per_minute.get(minute, 0), level)
    if level > trace.peak:
        trace.peak, trace.peak_at = level, ts
    local_of = {slot: local for local, slot in enumerate(slot_map[: len(dependent.slot_levels)])}
    for slot in entry[1]:
        state._slot_level[slot] += 1
        local = local_of.get(slot)
        now = state._slot_level[slot] + (dependent.slot_levels[local] if local is not None else 0)
        if now > state._slot_peak[slot]:
            state._slot_peak[slot], state._slot_peak_at[slot] = now, ts


def _add_rest(state: ServerLogState, result: RangeResult) -> None:
    """What the range decided alone: its open sessions, waiting connections, flags,
    counters, times."""
    for pid, key in result.sessions:
        entry = state.sessions[pid] = state.entry(key)
        state._level += 1
        for slot in entry[1]:
            state._slot_level[slot] += 1
    for pid, client in result.pending:
        state.pending.pop(pid, None)
        state.pending[pid] = client
    state.ended_by_fatal |= result.ended_by_fatal
    state.walsender_pids |= result.walsender_pids
    trace, theirs = state.trace, result.trace
    for name in ADDED_COUNTERS:
        setattr(trace, name, getattr(trace, name) + getattr(theirs, name))
    trace.restarts.extend(theirs.restarts[: max(0, 10 - len(trace.restarts))])
    for version in theirs.versions:
        state.version(version)
    for name, better in (("first_ts", min), ("last_ts", max)):
        mine, other = getattr(trace, name), getattr(theirs, name)
        setattr(
            trace, name, other if mine is None else mine if other is None else better(mine, other)
        )
    state._unseen_edges.update(result.unseen_edges)
    state.clock.unknown_zones |= result.unknown_zones
    ts, bucket, valid = result.last
    if ts is not None:
        state._second_ts, state._bucket = ts, bucket
    state._second_valid = valid
    state._minute = state._second = None


def _resolved(
    batch: list[tuple[Any, list[Any]]], keys: dict[Any, tuple[Any, ...] | None], line_base: int
) -> dict[Any, list[Any]]:
    """A chunk's groups with their real keys, merged as one pass would have counted them
    (a placeholder may turn out to be a group the chunk already has, or will have)."""
    groups: dict[Any, list[Any]] = {}
    for key, (count, line, first, last) in batch:
        if key in keys:
            key = keys[key]
        if key is None:
            continue
        line = None if line is None else line + line_base
        group = groups.get(key)
        if group is None:
            groups[key] = [count, line, first, last]
        else:
            group[0] += count
            if line is not None and (group[1] is None or line < group[1]):
                group[1] = line
            group[2], group[3] = min(group[2], first), max(group[3], last)
    return groups
