"""PostgreSQL jsonlog (`log_destination = 'jsonlog'`, PG15+): one JSON object per line.

Keys with NULL values are omitted (`appendJSONKeyValue` returns early), so LOG records have
no `state_code`; `remote_port` is a number (domain reference §1.4). Lines that cannot carry
what we count (neither FATAL nor a connection message) are passed over by a byte search
before any JSON is decoded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
from pgslots.events.pglog.clock import Clock
from pgslots.events.pglog.rows import feed_row
from pgslots.events.pglog.trace import ServerLogState
from pgslots.events.sources import ReadOptions, ReadStats, open_binary, register

FLUSH_EVERY = 50_000
_WORTH_DECODING = (
    b'"FATAL"',
    b"connection authorized",
    b"disconnection",
    b"starting PostgreSQL",
    b"ready to accept connections",
)


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return str(value) if value not in (None, "") else None


class PgJsonlog:
    name = "pg-jsonlog"
    description = "PostgreSQL jsonlog (PG15+, one JSON object per line)"
    priority = 20

    def sniff(self, head: str, path: Path) -> bool:
        first = head.lstrip().split("\n", 1)[0]
        return first.startswith('{"timestamp":') and '"error_severity":' in first

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        clock = Clock(options.tz)
        state = ServerLogState(self.name, str(path), clock, options.group_seconds)
        progress = options.progress
        pending = 0
        with open_binary(path) as handle:
            try:
                for number, line in enumerate(handle, 1):
                    stats.records += 1
                    if progress is not None:
                        pending += len(line)
                        if pending >= 1 << 20:
                            progress(pending)
                            pending = 0
                    if not any(marker in line for marker in _WORTH_DECODING):
                        if line.strip() and not line.lstrip().startswith(b"{"):
                            stats.skip(number, "not a JSON object")
                        continue
                    try:
                        record = json.loads(line)
                        if not isinstance(record, dict):
                            raise ValueError("not a JSON object")
                        group = feed_row(
                            state,
                            log_time=str(record["timestamp"]),
                            pid=str(record.get("pid", "")),
                            severity=str(record.get("error_severity", "")),
                            message=str(record.get("message", "")),
                            user=_text(record, "user"),
                            db=_text(record, "dbname"),
                            app=_text(record, "application_name"),
                            client=_text(record, "remote_host"),
                            sqlstate=_text(record, "state_code"),
                            stage=_text(record, "ps"),
                        )
                    except (ValueError, KeyError, TypeError) as exc:
                        reason = (
                            f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)[:120]
                        )
                        stats.skip(number, reason)
                        continue
                    if group is not None:
                        group[1] = number
                    if number % FLUSH_EVERY == 0:
                        yield from state.flush()
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise InputError(
                    f"cannot read past a damaged part: {exc}", path=str(path)
                ) from None
        if progress is not None and pending:
            progress(pending)
        yield from state.flush()
        stats.extra["connection_trace"] = state.finish()


register(PgJsonlog())
