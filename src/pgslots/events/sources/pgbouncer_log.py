"""pgbouncer's own log: the errors it sends to clients, and its failed logins to the server.

    2026-11-25 15:55:09.821 UTC [3897] WARNING C-0x5640...: (nodb)/(nouser)@127.0.0.1:33786 pooler error: no more connections allowed (max_client_conn)
    2026-11-25 15:55:10.836 UTC [3897] WARNING server login failed: FATAL remaining connection slots are reserved for non-replication superuser connections

Each error a client received is one event: the `pooler error:` line pgbouncer writes when
`log_pooler_errors` is on (the default), with database, user and client address from the
`C-0x...: db/user@addr:port` part. pgbouncer also writes `closing because: <reason>` for the
same client just before; those lines are used only when a log holds no `pooler error` line
at all (`log_pooler_errors = 0`), so no error is counted twice.

The server-side view (`server login failed: ...`) is not a client's error but its cause: when
pgbouncer relays the server's refusal, the client's error carries the server's wording. The
reader counts those logins and says so in its notes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pgslots.events.model import Category, ErrorEvent, SourceRef
from pgslots.events.sources import ReadOptions, ReadStats, numbered_lines, register
from pgslots.events.taxonomy import classify
from pgslots.events.times import UTC, parse_time

_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)(?: (?P<zone>[A-Z]{2,5}|[+-]\d{2}:?\d{2}))? "
    r"\[?(?P<pid>\d+)\]? (?P<level>LOG|WARNING|ERROR|FATAL|NOISE|DEBUG|NOTICE) (?P<text>.*)$"
)
_CLIENT = re.compile(
    r"^C-0x[0-9a-f]+: (?P<db>[^/\s]*)/(?P<user>[^@\s]*)@(?P<addr>\S+?)(?::\d+)? (?P<what>.*)$"
)
_POOLER_ERROR = "pooler error: "
_CLOSING = re.compile(r"^closing because: (?P<reason>.*?)(?: \(age=\d+s\))?$")
_SERVER_LOGIN = re.compile(r"server login failed: (?P<reason>.*)$")
_NOT_ERRORS = (
    "client close request",
    "client unexpected eof",
    "server idle timeout",
    "server lifetime over",
    "client disconnect while server was not ready",
)
_UNSET = ("(nodb)", "(nouser)", "")


def _value(text: str) -> str | None:
    return None if text in _UNSET else text


class PgbouncerLog:
    name = "pgbouncer"
    description = (
        "pgbouncer log (pooler errors, max_client_conn, query_wait_timeout, server login failures)"
    )
    priority = 50

    def sniff(self, head: str, path: Path) -> bool:
        lines = [line for line in head.splitlines()[:200] if line.strip()]
        ours = [line for line in lines if _LINE.match(line)]
        markers = ("C-0x", "S-0x", "PgBouncer", "pgbouncer", "pooler error")
        return (
            bool(ours)
            and len(ours) * 2 >= len(lines)
            and any(m in line for line in ours for m in markers)
        )

    def _time(
        self, match: re.Match[str], options: ReadOptions, stats: ReadStats
    ) -> dt.datetime | None:
        zone = match["zone"]
        text = match["ts"] + (
            f" {zone}" if zone and zone not in ("UTC", "GMT") and zone[0] in "+-" else ""
        )
        parsed = parse_time(text, UTC if zone in ("UTC", "GMT") else options.tz)
        if parsed is None:
            return None
        if parsed[1] and zone not in ("UTC", "GMT"):
            stats.naive_time()
        return parsed[0]

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        pooler_errors = 0
        closings: list[ErrorEvent] = []
        server_logins: Counter[str] = Counter()
        for number, line in numbered_lines(path, options):
            if not line.strip():
                continue
            stats.records += 1
            match = _LINE.match(line)
            if match is None:
                stats.skip(number, "not a pgbouncer log line")
                continue
            text = match["text"]
            login = _SERVER_LOGIN.search(text)
            if login:
                server_logins[login["reason"]] += 1
                continue
            client = _CLIENT.match(text)
            if client is None:
                continue
            what = client["what"]
            closing = _CLOSING.match(what)
            if not what.startswith(_POOLER_ERROR) and not (
                closing and closing["reason"] not in _NOT_ERRORS
            ):
                continue
            ts = self._time(match, options, stats)
            if ts is None:
                stats.skip(number, "unreadable time")
                continue
            # `closing` is set here unless the line is a pooler error (see the filter above)
            message = (
                what[len(_POOLER_ERROR) :]
                if what.startswith(_POOLER_ERROR) or closing is None
                else closing["reason"]
            )
            event = ErrorEvent(
                ts=ts,
                message=message,
                source=SourceRef(self.name, str(path), number),
                error_class="pgbouncer",
                db=_value(client["db"]),
                user=_value(client["user"]),
                client=_value(client["addr"]),
                app="pgbouncer",
            )
            if what.startswith(_POOLER_ERROR):
                pooler_errors += 1
                yield event
            elif classify(message) != (Category.OTHER,):
                closings.append(event)
        if not pooler_errors:
            yield from closings
        if server_logins:
            reasons = "; ".join(f"{reason} (x{n})" for reason, n in server_logins.most_common(5))
            stats.notes.append(
                f"pgbouncer's own logins to the server failed {sum(server_logins.values())} times: {reasons}. "
                "Clients then get the server's wording through pgbouncer: PostgreSQL itself had no slot for "
                "pgbouncer's role."
            )


register(PgbouncerLog())
