"""Per-pid sessions, the FATAL-to-connection correlation, pre-counted FATAL groups, and the
connection trace a server log leaves for `events.serverlog.summarise`.

Why per pid: a backend is one process from `connection received` to its end, and every
line it writes carries its pid. So a FATAL whose prefix lacks `%u`/`%d`/`%a`/`%h` gets them
from the same pid's `connection authorized` (user, database, application) and
`connection received` (client) lines; with pid reuse, the most recent ones before the
FATAL count, which is what a forward pass that forgets a pid at its end gives.

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

The FATAL lines become `ErrorEvent`s grouped by (second, message, user, database,
application, client, SQLSTATE), each keeping the line of its first member, so a count of
thousands stays traceable to a row of the file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any, Union

from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.pglog import lines
from pgslots.events.pglog.clock import Clock

Value = Union[bytes, str, None]
SessionKey = tuple[Value, Value, Value, Value]  # user, database, application, client
FACETS = ("user", "db", "app", "client")
MAX_PENDING = 50_000  # connection-received entries waiting for their pid's next line
MAX_SESSIONS = 200_000  # more open sessions than any server allows: log_disconnections is off


def text(value: Value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_PLACEHOLDERS: dict[Value, Value] = {value: None for value in lines.UNKNOWN_VALUES}
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
    restarts: list[dt.datetime] = dataclasses.field(default_factory=list)  # the first few (re)starts
    restart_count: int = 0
    versions: list[str] = dataclasses.field(default_factory=list)  # from `starting PostgreSQL X`
    peak: int = 0
    peak_at: dt.datetime | None = None
    per_minute: dict[int, int] = dataclasses.field(default_factory=dict)  # epoch minute -> highest level
    unseen_per_minute: dict[int, int] = dataclasses.field(default_factory=dict)  # epoch minute -> sessions certainly open then, start unseen
    facet_peaks: dict[str, dict[str, tuple[int, dt.datetime]]] = dataclasses.field(default_factory=dict)
    stages: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)  # (sqlstate, ps) of FATALs, csv/json
    prefix: str | None = None  # the log_line_prefix used (stderr)
    prefix_recognised: bool = False  # True when we recognised it rather than being told


class ServerLogState:
    """The forward pass over one server log, shared by the stderr, csvlog and jsonlog readers.

    The readers call `authorized`, `disconnection`, `received`, `fatal` and `restart` in file
    order, with the second each line belongs to (its text, as the `Clock` reads it), and
    take events out with `flush`.
    """

    def __init__(self, fmt: str, path: str, clock: Clock) -> None:
        self.clock = clock
        self.trace = ConnectionTrace(path=path, format=fmt)
        self.fmt = fmt
        self.path = path
        self.sessions: dict[Any, SessionKey] = {}
        self.pending: dict[Any, Value] = {}  # pid -> client of a connection not yet authorized
        self.ended_by_fatal: set[Any] = set()
        self.walsender_pids: set[Any] = set()
        self.groups: dict[tuple[Any, ...], list[Any]] = {}  # key -> [count, line]
        self._second: Any = None
        self._second_ts: dt.datetime | None = None
        self._second_valid = False
        self._level = 0
        self._minute: int | None = None
        self._minute_high = 0
        self._facet_levels: list[Counter[Value]] = [Counter() for _ in FACETS]
        self._facet_peaks: list[dict[Value, tuple[int, dt.datetime]]] = [{} for _ in FACETS]
        self._unseen_edges: Counter[int] = Counter()

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

    def _open(self, key: SessionKey) -> None:
        """A session starts holding a slot: levels up, peaks noted (in line order, so a burst
        inside one second counts at its height)."""
        level = self._level = self._level + 1
        if level > self._minute_high:
            self._minute_high = level
        ts = self._second_ts
        trace = self.trace
        if level > trace.peak:
            trace.peak, trace.peak_at = level, ts
        for value, levels, peaks in zip(key, self._facet_levels, self._facet_peaks):
            if value is None:
                continue
            now = levels[value] = levels[value] + 1
            best = peaks.get(value)
            if best is None or now > best[0]:
                peaks[value] = (now, ts)

    def _close(self, key: SessionKey) -> None:
        self._level -= 1
        for value, levels in zip(key, self._facet_levels):
            if value is not None:
                levels[value] -= 1

    # -- lines -----------------------------------------------------------------------------

    def received(self, pid: Any, client: Value) -> None:
        self.trace.received += 1
        pending = self.pending
        pending.pop(pid, None)
        pending[pid] = known(client)
        if len(pending) > MAX_PENDING:  # connections that never went further (port scans, TLS probes)
            for stale in list(pending)[: MAX_PENDING // 2]:
                del pending[stale]

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
        if len(self.sessions) >= MAX_SESSIONS:
            stale = next(iter(self.sessions))
            self._close(self.sessions.pop(stale))
            trace.reused_pid += 1
        key = (user, db, known(app), client)
        self.sessions[pid] = key
        self._open(key)

    def replication(self, pid: Any) -> None:
        self.trace.walsenders += 1
        self.pending.pop(pid, None)
        self.walsender_pids.add(pid)

    def disconnection(self, pid: Any, seconds: float, user: Value, db: Value, client: Value) -> None:
        trace = self.trace
        trace.disconnections += 1
        if pid in self.ended_by_fatal:
            self.ended_by_fatal.discard(pid)
            return
        if pid in self.walsender_pids:
            self.walsender_pids.discard(pid)
            return
        session = self.sessions.pop(pid, None)
        if session is not None:
            trace.ended_seen += 1
            self._close(session)
            return
        trace.unseen_start += 1
        end = self._second_ts
        if end is not None:
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

    def fatal(
        self,
        pid: Any,
        message: Value,
        sqlstate: Value,
        user: Value,
        db: Value,
        app: Value,
        client: Value,
        stage: Value = None,
    ) -> list[Any] | None:
        """Count one FATAL line; returns the new group's `[count, line]` when this line
        starts a group (the caller sets its line number), else None."""
        trace = self.trace
        trace.fatal_lines += 1
        unknown = _unknown_to_none
        user, db, app, client = unknown(user, user), unknown(db, db), unknown(app, app), unknown(client, client)
        session = self.sessions.pop(pid, None)
        if session is not None:
            trace.refused_after_auth += 1
            self._close(session)
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
        key = (self._second, message, user, db, app, client, sqlstate or None)
        group = self.groups.get(key)
        if group is not None:
            group[0] += 1
            return None
        group = self.groups[key] = [1, None]
        return group

    # -- output ----------------------------------------------------------------------------

    def flush(self) -> Iterator[ErrorEvent]:
        """The FATAL groups counted so far, as events (then forgotten: memory stays bounded)."""
        groups, self.groups = self.groups, {}
        second = self.clock.second
        for (sec, message, user, db, app, client, sqlstate), (count, line) in groups.items():
            ts = second(sec)
            if ts is None:
                self.trace.bad_time += count
                continue
            yield ErrorEvent(
                ts=ts,
                message=text(message) or "",
                source=SourceRef(self.fmt, self.path, line),
                count=count,
                sqlstate=text(sqlstate),
                user=text(user),
                db=text(db),
                app=text(app),
                client=text(client),
            )

    def finish(self) -> ConnectionTrace:
        self._end_minute()
        trace = self.trace
        trace.open_at_end = len(self.sessions)
        level = 0
        for minute in sorted(self._unseen_edges):
            level += self._unseen_edges[minute]
            trace.unseen_per_minute[minute] = level
        trace.facet_peaks = {
            facet: {text(value) or "": peak for value, peak in peaks.items()}
            for facet, peaks in zip(FACETS, self._facet_peaks)
        }
        return trace
