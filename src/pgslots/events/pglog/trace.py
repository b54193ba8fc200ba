"""Per-pid sessions, the FATAL-to-connection correlation, pre-counted FATAL groups, and the
connection trace a server log leaves for `events.serverlog.summarise`.

Why per pid: a backend is one process from `connection received` to its end, and every
line it writes carries its pid. So a FATAL whose prefix lacks `%u`/`%d`/`%a`/`%h` gets them
from the same pid's `connection authorized` (user, database, application) and
`connection received` (client) lines; with pid reuse, the most recent ones before the
FATAL count, which is what a forward pass that forgets a pid at its end gives. A `connection
received` is a new process: whatever an earlier process of the same pid left (a session
whose end the log does not show, a refusal or walsender flag) ends there (`new_process`).

Why a FATAL ends a session: a connection refused after authentication (reserved slots,
role or database limit) logs `connection authorized` then the FATAL, and never
`disconnection` (its backend exits in `InitPostgres`, before `log_disconnections` is armed;
domain reference §1.4). Counting it as held after its FATAL would inflate the backend count
in exactly the minutes that matter. Between the two lines it does hold a slot (the
backend has claimed its PGPROC, domain §1.2), so it counts for that moment only. Sessions that end by a FATAL later in their life (administrator
command, idle timeouts) do log `disconnection` too; that second end is ignored.

Backend levels follow the lines one by one (a burst inside one second counts at its
height), in total and per user, database, application and client; per minute the highest. Sessions
whose start the log does not show (open before it began, or `log_connections` off) are
known from their `disconnection` line alone; they are counted apart and added to the
per-minute total for the whole minutes they certainly covered, so the curve stays a lower
bound instead of going negative.

The FATAL lines become `ErrorEvent`s grouped by (minute, message, user, database,
application, client, SQLSTATE) (by second when the timeline asks: `group_seconds`), each
keeping the line of its first member and its first and last times, so a count of
thousands stays traceable to a row of the file and memory follows what is distinct.

`pglog.bulk.feed` applies a chunk's lines with the same transitions as the methods here,
inlined; `tests/test_pglog_fast_path.py` keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.pglog import lines
from pgslots.events.pglog.clock import Clock

Value = bytes | str | None
SessionKey = tuple[Value, Value, Value, Value]  # user, database, application, client
Entry = tuple[
    SessionKey, tuple[int, ...]
]  # a session's key and its facet slots (see ServerLogState.entry)
FACETS = ("user", "db", "app", "client")
MAX_PENDING = 50_000  # connection-received entries waiting for their pid's next line
MAX_SESSIONS = 200_000  # more open sessions than any server allows: log_disconnections is off


def text(value: Value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_PLACEHOLDERS: dict[Value, Value] = dict.fromkeys(lines.UNKNOWN_VALUES)
_unknown_to_none = _PLACEHOLDERS.get


def known(value: Value) -> Value:
    """None for the placeholders a prefix prints before the session is known."""
    return _unknown_to_none(value, value)


@dataclasses.dataclass
class ConnectionTrace:
    """What one server log says about connections, beyond its FATAL events.

    Left in `ReadStats.extra["connection_trace"]`; all times are aware UTC.
    """

    path: str
    format: str
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None
    received: int = 0  # `connection received` lines
    authorized: int = 0  # `connection authorized` lines (client backends that got in)
    disconnections: int = 0  # `disconnection` lines
    ended_seen: int = 0  # sessions whose authorization and end the log both shows
    refused_after_auth: int = 0  # authorized, then a FATAL: never held the slot for long
    unseen_start: int = 0  # disconnections whose session started before the log (or unlogged)
    open_at_end: int = 0  # authorized sessions with no end in the log
    ended_by_restart: int = 0  # sessions cut by a server (re)start
    reused_pid: int = 0  # an authorization for a pid whose session had no end in the log
    walsenders: int = 0  # replication connections: their own slots since PG12
    fatal_lines: int = 0
    bad_time: int = 0  # FATAL lines whose timestamp did not read as a time (skipped)
    correlated: int = 0  # FATALs completed from an earlier line of the same pid
    restarts: list[dt.datetime] = dataclasses.field(
        default_factory=list
    )  # the first few (re)starts
    restart_count: int = 0
    versions: list[str] = dataclasses.field(default_factory=list)  # from `starting PostgreSQL X`
    peak: int = 0
    peak_at: dt.datetime | None = None
    per_minute: dict[int, int] = dataclasses.field(
        default_factory=dict
    )  # epoch minute -> highest level
    unseen_per_minute: dict[int, int] = dataclasses.field(
        default_factory=dict
    )  # epoch minute -> sessions certainly open then, start unseen
    facet_peaks: dict[str, dict[str, tuple[int, dt.datetime]]] = dataclasses.field(
        default_factory=dict
    )
    stages: Counter[tuple[str, str]] = dataclasses.field(
        default_factory=Counter
    )  # (sqlstate, ps) of FATALs, csv/json
    prefix: str | None = None  # the log_line_prefix used (stderr)
    prefix_recognised: bool = False  # True when we recognised it rather than being told


class ServerLogState:
    """The forward pass over one server log, shared by the stderr, csvlog and jsonlog readers.

    The readers call `authorized`, `disconnection`, `received`, `fatal` and `restart` in file
    order, with the second each line belongs to (its text, as the `Clock` reads it), and
    take events out with `flush`.
    """

    def __init__(self, fmt: str, path: str, clock: Clock, group_seconds: int = 1) -> None:
        self.clock = clock
        self.group_seconds = group_seconds  # FATAL groups per second (1) or per minute (60)
        self.trace = ConnectionTrace(path=path, format=fmt)
        self.fmt = fmt
        self.path = path
        self.sessions: dict[Any, Entry] = {}  # pid -> the open session's entry
        self.pending: dict[Any, Value] = {}  # pid -> client of a connection not yet authorized
        self.ended_by_fatal: set[Any] = set()
        self.walsender_pids: set[Any] = set()
        self.groups: dict[
            tuple[Any, ...], list[Any]
        ] = {}  # key -> [count, line, first ts, last ts]
        self._second: Any = None
        self._bucket: Any = None  # the FATAL groups' time key: the second's text, or the minute
        self._second_ts: dt.datetime | None = None
        self._second_valid = False
        self._level = 0
        self._minute: int | None = None
        self._minute_high = 0
        # Per-facet levels live in flat lists, one slot per (facet, value), so that opening
        # or closing a session touches a few list items through the slots its entry names.
        self._entries: dict[SessionKey, Entry] = {}
        self._slot_of: dict[tuple[int, Value], int] = {}
        self._slot_level: list[int] = []
        self._slot_peak: list[int] = []
        self._slot_peak_at: list[dt.datetime | None] = []
        self._unseen_edges: Counter[int] = Counter()
        self._texts: dict[Value, str | None] = {}
        self.max_sessions = MAX_SESSIONS  # past these, `forget_oldest` / `too_many_pending`
        self.max_pending = MAX_PENDING
        # Only a `pglog.ranges.RangeState` (a byte range read apart) uses these: see `bulk.feed`.
        self.deferred: set[Any] = set()
        self.marks: bytearray | None = None

    # -- time ------------------------------------------------------------------------------

    def at(self, second: Any) -> bool:
        """Move to the second `second` (a timestamp text without fraction). False when it is
        no time."""
        if second == self._second:
            return self._second_valid
        self._second = second
        ts = self.clock.second(second)
        self._second_valid = ts is not None
        if ts is not None:
            self._second_ts = ts
            self._bucket = (
                second if self.group_seconds == 1 else int(ts.timestamp()) // self.group_seconds
            )
            trace = self.trace
            if trace.first_ts is None or ts < trace.first_ts:
                trace.first_ts = ts
            if trace.last_ts is None or ts > trace.last_ts:
                trace.last_ts = ts
            minute = int(ts.timestamp()) // 60
            if minute != self._minute:
                self._end_minute()
                self._minute, self._minute_high = minute, self._level
        return self._second_valid

    def _end_minute(self) -> None:
        if self._minute is not None:
            per_minute = self.trace.per_minute
            per_minute[self._minute] = max(per_minute.get(self._minute, 0), self._minute_high)

    def entry(self, key: SessionKey) -> Entry:
        """The shared entry of a session key: the key and its facet slots."""
        found = self._entries.get(key)
        if found is None:
            slots = tuple(
                self.slot(facet, value) for facet, value in enumerate(key) if value is not None
            )
            found = self._entries[key] = (key, slots)
        return found

    def slot(self, facet: int, value: Value) -> int:
        """The slot of one facet's value (user, database, application or client)."""
        slot = self._slot_of.get((facet, value))
        if slot is None:
            slot = self._slot_of[(facet, value)] = len(self._slot_level)
            self._slot_level.append(0)
            self._slot_peak.append(0)
            self._slot_peak_at.append(None)
        return slot

    def _open(self, entry: Entry) -> None:
        """A session starts holding a slot: levels up, peaks noted (in line order, so a burst
        inside one second counts at its height)."""
        level = self._level = self._level + 1
        if level > self._minute_high:
            self._minute_high = level
        ts = self._second_ts
        trace = self.trace
        if level > trace.peak:
            trace.peak, trace.peak_at = level, ts
        levels, peaks = self._slot_level, self._slot_peak
        for slot in entry[1]:
            now = levels[slot] = levels[slot] + 1
            if now > peaks[slot]:
                peaks[slot] = now
                self._slot_peak_at[slot] = ts

    def _close(self, entry: Entry) -> None:
        self._level -= 1
        levels = self._slot_level
        for slot in entry[1]:
            levels[slot] -= 1

    # -- lines -----------------------------------------------------------------------------

    def received(self, pid: Any, client: Value) -> None:
        self.trace.received += 1
        self.new_process(pid)
        self.pending[pid] = client  # the address PostgreSQL printed (never empty nor a placeholder)
        if len(self.pending) > self.max_pending:
            self.too_many_pending()

    def new_process(self, pid: Any) -> None:
        """A new backend process with this pid (its `connection received`): whatever an
        earlier process with the same pid left is over (a session whose end the log does not
        show, a refusal or walsender flag, a connection that went no further)."""
        stale = self.sessions.pop(pid, None)
        if stale is not None:
            self.trace.reused_pid += 1
            self._close(stale)
        self.ended_by_fatal.discard(pid)
        self.walsender_pids.discard(pid)
        self.pending.pop(pid, None)

    def too_many_pending(self) -> None:
        """Connections that never went further (port scans, TLS probes): forget the older half."""
        for stale in list(self.pending)[: MAX_PENDING // 2]:
            del self.pending[stale]

    def authorized(self, pid: Any, user: Value, db: Value, app: Value, client: Value) -> None:
        trace = self.trace
        trace.authorized += 1
        self.ended_by_fatal.discard(pid)
        self.walsender_pids.discard(pid)
        waiting = self.pending.pop(pid, None)
        client = known(client) or waiting
        old = self.sessions.pop(pid, None)
        if old is not None:
            trace.reused_pid += 1
            self._close(old)
        if len(self.sessions) >= self.max_sessions:
            self.forget_oldest()
        entry = self.entry((user, db, known(app), client))
        self.sessions[pid] = entry
        self._open(entry)

    def forget_oldest(self) -> None:
        """More sessions open than any server allows: log_disconnections is off; the
        oldest is taken as ended."""
        self._close(self.sessions.pop(next(iter(self.sessions))))
        self.trace.reused_pid += 1

    def replication(self, pid: Any) -> None:
        self.trace.walsenders += 1
        self.pending.pop(pid, None)
        self.walsender_pids.add(pid)

    def disconnection(self, pid: Any) -> bool:
        """A session ends; True when the log did not show its start: then call
        `unseen_session` with its length (read only for those, which are few)."""
        trace = self.trace
        trace.disconnections += 1
        if pid in self.ended_by_fatal:
            self.ended_by_fatal.discard(pid)
            return False
        if pid in self.walsender_pids:
            self.walsender_pids.discard(pid)
            return False
        session = self.sessions.pop(pid, None)
        if session is not None:
            trace.ended_seen += 1
            self._close(session)
            return False
        return True

    def unseen_session(self, seconds: float | None) -> None:
        """A session that ended now after `seconds` (None: not understood), whose start the
        log does not show: counted in the whole minutes it certainly covered."""
        self.trace.unseen_start += 1
        end = self._second_ts
        if end is not None and seconds is not None:
            start_minute = int(end.timestamp() - seconds) // 60
            end_minute = int(end.timestamp()) // 60
            if end_minute - start_minute >= 2:  # covered minutes start_minute+1 .. end_minute-1
                self._unseen_edges[start_minute + 1] += 1
                self._unseen_edges[end_minute] -= 1

    def restart(self) -> None:
        """`database system is ready to accept connections`: no earlier backend survives."""
        self.trace.restart_count += 1
        if self._second_ts is not None and len(self.trace.restarts) < 10:
            self.trace.restarts.append(self._second_ts)
        for key in self.sessions.values():
            self._close(key)
        self.trace.ended_by_restart += len(self.sessions)
        self.sessions.clear()
        self.pending.clear()
        self.ended_by_fatal.clear()
        self.walsender_pids.clear()

    def version(self, version: str) -> None:
        if version not in self.trace.versions:
            self.trace.versions.append(version)

    def fatal(self, pid: Any, *fields: Value) -> list[Any] | None:
        """Count one FATAL line (`fields` as `fatal_key` takes them); returns the new group's
        `[count, line, first, last]` when this line starts a group (the caller sets its line
        number), else None."""
        key = self.fatal_key(pid, *fields)
        return None if key is None else self._count(key)

    def fatal_key(
        self,
        pid: Any,
        message: Value,
        sqlstate: Value,
        user: Value,
        db: Value,
        app: Value,
        client: Value,
        stage: Value = None,
    ) -> tuple[Any, ...] | None:
        """One FATAL line's effect on the sessions and its group key (None, and counted as
        `bad_time`, when its time is no time)."""
        trace = self.trace
        trace.fatal_lines += 1
        unknown = _unknown_to_none
        user, db, app, client = (
            unknown(user, user),
            unknown(db, db),
            unknown(app, app),
            unknown(client, client),
        )
        entry = self.sessions.pop(pid, None)
        if entry is not None:
            session = entry[0]
            trace.refused_after_auth += 1
            self._close(entry)
            self.ended_by_fatal.add(pid)
            if user is None or db is None or app is None or client is None:
                trace.correlated += 1
                user = user or session[0]
                db = db or session[1]
                app = app or session[2]
                client = client or session[3]
        elif pid in self.pending:
            waiting = self.pending.pop(pid)
            if client is None and waiting is not None:
                trace.correlated += 1
                client = waiting
        if stage is not None and sqlstate:
            trace.stages[(text(sqlstate) or "", text(stage) or "")] += 1
        if not self._second_valid:
            trace.bad_time += 1
            return None
        return (self._bucket, message, user, db, app, client, sqlstate or None)

    def _count(self, key: tuple[Any, ...]) -> list[Any] | None:
        """Add a FATAL to its group; the new group's `[count, line, first, last]` when it
        starts one (the caller sets its line), else None."""
        ts = self._second_ts
        group = self.groups.get(key)
        if group is not None:
            group[0] += 1
            if ts > group[3]:
                group[3] = ts
            elif ts < group[2]:
                group[2] = ts
            return None
        group = self.groups[key] = [1, None, ts, ts]
        return group

    # -- output ----------------------------------------------------------------------------

    def flush(self) -> Iterator[ErrorEvent]:
        """The FATAL groups counted so far, as events (then forgotten: memory stays bounded)."""
        groups, self.groups = self.groups, {}
        shared = self._text
        for (_bucket, message, user, db, app, client, sqlstate), (
            count,
            line,
            first,
            last,
        ) in groups.items():
            yield ErrorEvent(
                ts=first,
                last_ts=last if last > first else None,
                message=shared(message) or "",
                source=SourceRef(self.fmt, self.path, line),
                count=count,
                sqlstate=shared(sqlstate),
                user=shared(user),
                db=shared(db),
                app=shared(app),
                client=shared(client),
            )

    def _text(self, value: Value) -> str | None:
        """`text(value)`, one string object per distinct value: the events of a long log
        repeat a few messages, users and clients many times."""
        found = self._texts.get(value)
        if found is None and value is not None:
            if len(self._texts) > 10_000:
                self._texts.clear()
            found = self._texts[value] = text(value)
        return found

    def finish(self) -> ConnectionTrace:
        self._end_minute()
        trace = self.trace
        trace.open_at_end = len(self.sessions)
        level = 0
        for minute in sorted(self._unseen_edges):
            level += self._unseen_edges[minute]
            trace.unseen_per_minute[minute] = level
        trace.facet_peaks = {facet: {} for facet in FACETS}
        for (facet, value), slot in self._slot_of.items():
            at = self._slot_peak_at[slot]
            if at is not None:
                trace.facet_peaks[FACETS[facet]][text(value) or ""] = (self._slot_peak[slot], at)
        return trace
