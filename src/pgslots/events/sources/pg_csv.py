"""PostgreSQL csvlog (`log_destination = 'csvlog'`): 23 columns (PG12), 24 (PG13, with
`backend_type`) or 26 (PG14+, with `leader_pid` and `query_id`). Quoted fields may hold
newlines and doubled quotes, so records are read with the `csv` module, not by line.

Columns used (domain reference §1.4): log_time, user_name, database_name, process_id,
connection_from (`host:port`), command_tag (the `ps` display: `initializing` = refused for
too many clients, `startup` = reserved slots or a connection limit), error_severity,
sql_state_code, message, application_name.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
from pgslots.events.pglog.clock import Clock
from pgslots.events.pglog.rows import feed_row
from pgslots.events.pglog.trace import ServerLogState
from pgslots.events.sources import ReadOptions, ReadStats, open_binary, register

COLUMN_COUNTS = (23, 24, 26)
FLUSH_EVERY = 50_000  # records between hand-overs of the counted FATAL groups
_LOG_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})? \S+")
_SEVERITIES = frozenset(
    {
        "DEBUG5",
        "DEBUG4",
        "DEBUG3",
        "DEBUG2",
        "DEBUG1",
        "INFO",
        "NOTICE",
        "WARNING",
        "ERROR",
        "LOG",
        "FATAL",
        "PANIC",
    }
)
csv.field_size_limit(64 << 20)  # an unbalanced quote must not swallow the whole file


def _host(connection_from: str) -> str | None:
    """`127.0.0.1:47706` -> `127.0.0.1`; `[local]` stays; `::1:5432` -> `::1`."""
    host, colon, port = connection_from.rpartition(":")
    return host if colon and port.isdigit() else connection_from or None


def looks_like_csvlog(row: list[str]) -> bool:
    return (
        len(row) in COLUMN_COUNTS and row[11] in _SEVERITIES and bool(_LOG_TIME.fullmatch(row[0]))
    )


class PgCsvlog:
    name = "pg-csvlog"
    description = "PostgreSQL csvlog (23, 24 or 26 columns)"
    priority = 30

    def sniff(self, head: str, path: Path) -> bool:
        try:
            first = next(csv.reader(head.splitlines(keepends=True)[:50]), None)
        except csv.Error:
            return False
        return first is not None and looks_like_csvlog(first)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        clock = Clock(options.tz)
        state = ServerLogState(self.name, str(path), clock, options.group_seconds)
        progress = options.progress
        reported = 0
        binary = open_binary(path)
        with io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            previous_line = 0
            try:
                for row in reader:
                    start_line, previous_line = previous_line + 1, reader.line_num
                    stats.records += 1
                    if progress is not None and stats.records % 10_000 == 0:
                        consumed = binary.tell()
                        progress(consumed - reported)
                        reported = consumed
                    if len(row) not in COLUMN_COUNTS:
                        stats.skip(
                            start_line,
                            f"{len(row)} columns, expected {' or '.join(map(str, COLUMN_COUNTS))}",
                        )
                        continue
                    severity = row[11]
                    if severity != "FATAL" and severity != "LOG":
                        continue
                    try:
                        group = feed_row(
                            state,
                            log_time=row[0],
                            pid=row[3],
                            severity=severity,
                            message=row[13],
                            user=row[1] or None,
                            db=row[2] or None,
                            app=row[22] or None,
                            client=_host(row[4]),
                            sqlstate=row[12] or None,
                            stage=row[7],
                        )
                    except ValueError as exc:
                        stats.skip(start_line, str(exc))
                        continue
                    if group is not None:
                        group[1] = start_line
                    if stats.records % FLUSH_EVERY == 0:
                        yield from state.flush()
            except csv.Error as exc:
                raise InputError(
                    f"not valid CSV: {exc}", path=str(path), line=reader.line_num
                ) from None
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise InputError(
                    f"cannot read past a damaged part: {exc}", path=str(path)
                ) from None
        yield from state.flush()
        stats.extra["connection_trace"] = state.finish()


register(PgCsvlog())
