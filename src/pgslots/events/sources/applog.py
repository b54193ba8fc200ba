"""Application logs with Python tracebacks, as written (gunicorn's error log, uvicorn,
Celery workers, Django's `LOGGING`, JSON loggers) and as collected (docker, kubectl,
journald, Heroku, Cloud Logging: see `events.collectors`).

A log is a sequence of records: a header line and the lines after it up to the next header,
where tracebacks live. A header is a line that starts with a time, after an optional level
(`ERROR 2026-11-25 15:12:29,234 ...`, Django's documented "verbose" format), optionally
bracketed (`[2026-11-25 15:12:29 +0000]` gunicorn, `[2026-11-25 15:12:29,234: ERROR/...]`
Celery): ISO 8601 with `T` or a space, `,` or `.` fractions, with or without a zone, or
syslog's `Nov 25 15:12:29`; or a line that starts with a level and no time (uvicorn's
default `ERROR:    ...`). A JSON line is a record by itself (`events.jsonrecords`). In a
collected log the collector's prefix is taken off each line first, and records are put
together per stream (service, pod, process), since collected streams interleave.

A record counts as one event when its last traceback ends in a connection failure:
`django.db.utils.OperationalError`, `psycopg.OperationalError`, `psycopg2.OperationalError`,
`psycopg_pool.PoolTimeout` and their kin (`*.OperationalError`, `*.InterfaceError`,
`psycopg_pool.TooManyRequests`). Python prints the causes first, so the last exception line
of a record is the one raised; its message may run over several lines (psycopg's
multi-attempt block, libpq's hints).

The event's time is the record's own (without a zone it is read in `--tz`; syslog's, without
a year, in the file's modification year), else the collector's time of its first line, else
there is none and the record is counted as skipped. Its transaction is the Celery task
(`celery:<task>`) or the request path (Django's "Internal Server Error: /checkout/",
gunicorn's "Error handling request /checkout/") that the record shows, else the innermost
frame of the project itself (not site-packages, not the standard library) as
`path/to/module.py:function`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgslots.errors import InputError
from pgslots.events.collectors import SYSLOG_TIME, CollectedLine, collect, detect_prefix
from pgslots.events.jsonrecords import read_record
from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.sources import (
    ReadOptions,
    ReadStats,
    load_json_document,
    numbered_lines,
    read_head,
    register,
)
from pgslots.events.times import from_epoch_us, parse_syslog_time, parse_time

_LEVEL = r"(?:CRITICAL|ERROR|WARNING|WARN|INFO|DEBUG|NOTSET)"
_ISO_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z| ?[+-]\d{2}:?\d{2}| UTC)?"
# A record's header: [level] time ..., or a level alone (uvicorn's default format has no time).
_HEADER = re.compile(
    rf"^(?:\[?{_LEVEL}\]?:?\s+)?\[?(?:(?P<ts>{_ISO_TIME})|(?P<syslog>{SYSLOG_TIME}))(?![\d:.])[\]:,|\s-]*(?P<rest>.*)$"
    rf"|^\[?{_LEVEL}\]?(?::\s+|\s+)(?P<untimed>.*)$"
)
_TRACEBACK = "Traceback (most recent call last):"
_CHAIN = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line \d+, in (?P<func>.+)$')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?:: (?P<message>.*))?$")
_CELERY_TASK = re.compile(
    r"(?:^|\s)Task (?P<task>[\w.]+)\[[\w-]+\]|^(?P<task2>[\w.]+)\[[0-9a-f-]{36}\]:"
)
# Django's django.request ("Internal Server Error: %s", request.path), gunicorn's handler,
# and a request object as JSON loggers print it (python-json-logger: str(WSGIRequest)).
_REQUEST_PATH = re.compile(
    r"(?:Internal Server Error|Error handling request): (?P<path>/[^\s?]*)"
    r"|<(?:WSGI|ASGI)Request: [A-Z]+ '(?P<path2>/[^'?]*)"
)
_CONNECTION_FAILURE = re.compile(
    r"(?:^|\.)(?:OperationalError|InterfaceError)$|^psycopg_pool\.(?:PoolTimeout|TooManyRequests|PoolClosed)$"
)
_NOT_PROJECT = (
    "site-packages",
    "dist-packages",
    "/lib/python",
    "<frozen",
    "<string>",
    "/lib64/python",
)
_MAX_BODY = 4000  # lines kept per record: a stream without headers must not grow without bound
_MARKERS = re.compile(r"OperationalError|InterfaceError|PoolTimeout")


def is_project_frame(path: str) -> bool:
    return not any(part in path for part in _NOT_PROJECT)


def _frame_name(path: str, function: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{function.strip()}"


class _Record:
    """One log record: where it starts, its own time and its collector's, its header and
    the lines after it."""

    __slots__ = ("body", "collected", "header", "hint", "line", "ts_kind", "ts_text")

    def __init__(
        self, line: int, ts_text: str | None, ts_kind: str, collected: CollectedLine, header: str
    ) -> None:
        self.line = line
        self.ts_text = ts_text
        self.ts_kind = ts_kind  # "iso" or "syslog"
        self.collected = collected  # the first line as collected: its stream and time
        self.header = header
        self.body: list[str] = []
        self.hint = ""  # a JSON record's fields that may name the request or the task

    def add(self, line: str) -> None:
        if not self.body and not line.startswith(_TRACEBACK):
            return  # lines before a traceback say nothing the reader uses
        self.body.append(line)
        if len(self.body) > _MAX_BODY:
            del self.body[: _MAX_BODY // 2]

    def final_exception(self) -> tuple[str, str, str | None] | None:
        """(type, message, innermost project frame) of the exception raised last, or None
        when the record holds no traceback."""
        if not self.body or not any(line.startswith(_TRACEBACK) for line in self.body):
            return None
        segments: list[list[str]] = []
        for line in self.body:
            if line.startswith(_TRACEBACK):
                segments.append([])
            elif segments:
                segments[-1].append(line)
        frames: list[str | None] = []
        exc_type = message = None
        for segment in segments:
            project = None
            at = 0
            while at < len(segment) and (
                segment[at].startswith((" ", "\t")) or not segment[at].strip()
            ):
                frame = _FRAME.match(segment[at]) if segment[at].startswith('  File "') else None
                if frame and is_project_frame(frame["file"]):
                    project = _frame_name(frame["file"], frame["func"])
                at += 1
            frames.append(project)
            tail = segment[at:]
            while tail and (not tail[-1].strip() or tail[-1].strip() in _CHAIN):
                tail.pop()
            if tail:
                match = _EXCEPTION.match(tail[0])
                if match:
                    exc_type = match["type"]
                    message = "\n".join([match["message"] or "", *tail[1:]]).rstrip("\n")
        if exc_type is None:
            return None
        innermost = next((f for f in reversed(frames) if f), None)
        return exc_type, message or "", innermost


class _Clock:
    """Turns the times of one file into aware UTC, counting what had to be assumed."""

    def __init__(self, path: Path, options: ReadOptions, stats: ReadStats) -> None:
        self.tz = options.tz
        self.stats = stats
        try:
            self.modified = dt.datetime.fromtimestamp(path.stat().st_mtime, options.tz)
        except OSError:
            self.modified = dt.datetime.now(options.tz)
        self.yearless = 0
        self.collector_times = 0

    def own(self, text: str, kind: str) -> dt.datetime | None:
        if kind == "syslog":
            return self._syslog(text)
        parsed = parse_time(text, self.tz)
        if parsed is None:
            return None
        if parsed[1]:
            self.stats.naive_time()
        return parsed[0]

    def collector(self, collected: CollectedLine) -> dt.datetime | None:
        text = collected.ts_text
        if text is None:
            return None
        if collected.ts_kind == "epoch_us":
            ts = from_epoch_us(text)
        elif collected.ts_kind == "syslog":
            ts = self._syslog(text)
        else:
            parsed = parse_time(text, self.tz)
            ts = parsed[0] if parsed else None
            if parsed and parsed[1]:
                self.stats.naive_time()
        if ts is not None:
            self.collector_times += 1
        return ts

    def _syslog(self, text: str) -> dt.datetime | None:
        """A year-less time: the file's modification year, or the one before for a month
        later than the file's (December's lines in a file last written in January)."""
        ts = parse_syslog_time(text, self.modified.year, self.tz)
        if ts is not None and ts.astimezone(self.tz).month > self.modified.month:
            ts = parse_syslog_time(text, self.modified.year - 1, self.tz)
        if ts is not None:
            self.yearless += 1
        if ts is not None and self.tz is not dt.timezone.utc:
            self.stats.naive_time()
        return ts

    def notes(self) -> list[str]:
        notes = []
        if self.yearless:
            notes.append(
                f"{self.yearless} syslog-style times carry no year: read as {self.modified.year} "
                "(the file's modification year; the year before for later months)"
            )
        if self.collector_times:
            notes.append(
                f"{self.collector_times} records carry no time of their own: the collector's time of their first line was used"
            )
        return notes


def _array_entries(path: Path, options: ReadOptions) -> Iterator[tuple[int, str]]:
    """A JSON array of entries (`gcloud logging read --format=json`, newest first) as JSON
    lines in time order, each numbered by its place in the array."""
    document = load_json_document(path, options)
    if not isinstance(document, list):
        raise InputError(
            "expected a JSON array of log entries or one JSON object per line", path=str(path)
        )
    entries = [
        (number, entry) for number, entry in enumerate(document, 1) if isinstance(entry, dict)
    ]

    def when(item: tuple[int, dict[str, Any]]) -> dt.datetime:
        stamp = item[1].get("timestamp")
        parsed = parse_time(stamp) if isinstance(stamp, str) else None
        return parsed[0] if parsed else dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    for number, entry in sorted(entries, key=when):
        yield number, json.dumps(entry)


def _transaction(record: _Record, frame: str | None) -> str | None:
    """The Celery task or the request path the record shows, else the project's frame."""
    task = _CELERY_TASK.search(record.header)
    if task:
        return f"celery:{task['task'] or task['task2']}"
    for text in (record.header, record.hint):
        path = _REQUEST_PATH.search(text) if text else None
        if path:
            return path["path"] or path["path2"]
    return frame


class AppLog:
    name = "applog"
    description = (
        "application logs with Python tracebacks (gunicorn, uvicorn, Celery, Django LOGGING, JSON loggers), "
        "also as collected by docker, kubectl, journald, Heroku, Cloud Logging"
    )
    priority = 60

    def sniff(self, head: str, path: Path) -> bool:
        if _TRACEBACK in head and _MARKERS.search(head):
            return True
        prefix = detect_prefix(head)
        lines = [collect(line, prefix) for line in head.splitlines()[:50] if line.strip()]
        records = sum(
            1
            for line in lines
            if (
                read_record(line.payload) is not None
                if line.payload is not None
                else _HEADER.match(line.text)
            )
        )
        return bool(lines) and records >= max(1, len(lines) // 2)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        head = read_head(path)
        prefix = detect_prefix(head)
        array = (
            re.match(r"[\ufeff\s]*\[\s*[{\]]", head) is not None
        )  # a JSON array, not "[2026-..." text
        lines = _array_entries(path, options) if array else numbered_lines(path, options)
        if array:
            stats.notes.append(
                "a JSON array: the numbers after its name are entries (1 = the first), not lines"
            )
        envelopes: set[str] = set()
        if prefix is not None:
            stats.notes.append(
                f"lines collected by {prefix.name}: its prefix was taken off each line"
            )
        clock = _Clock(path, options, stats)
        open_records: dict[str, _Record] = {}  # per stream: the record still taking lines
        counted = [0]  # tracebacks of other exceptions
        fields = prefix.fields if prefix is not None else None
        ts_kind = prefix.ts_kind if prefix is not None else "iso"
        header = _HEADER.match
        for number, line in lines:
            found = fields(line) if fields is not None else None
            text, stream, ts = found if found is not None else (line, "", None)
            stream, kind = stream or "", ts_kind
            if text[:1] == "{":  # JSON: the application's record, or a collector's envelope
                collected = collect(line, prefix)
                if collected.envelope:
                    envelopes.add(collected.envelope)
                if collected.payload is not None:
                    yield from self._json_record(
                        number, collected, open_records, path, clock, stats, counted
                    )
                    continue
                text, stream, ts, kind = (
                    collected.text,
                    collected.stream,
                    collected.ts_text,
                    collected.ts_kind,
                )
            match = header(text)
            if match is None:
                current = open_records.get(stream)
                if current is not None:
                    current.add(text)
                elif text.startswith(_TRACEBACK):
                    current = open_records[stream] = _Record(
                        number, None, "iso", CollectedLine(text, stream, ts, kind), ""
                    )
                    current.add(text)
                continue
            stats.records += 1
            done = open_records.pop(stream, None)
            if done is not None:
                yield from self._events(done, path, clock, stats, counted)
            own, own_kind = (match["ts"], "iso") if match["ts"] else (match["syslog"], "syslog")
            rest = match["rest"] if match["rest"] is not None else match["untimed"]
            open_records[stream] = _Record(
                number, own, own_kind, CollectedLine(text, stream, ts, kind), rest
            )
        for record in open_records.values():
            yield from self._events(record, path, clock, stats, counted)
        for name in sorted(envelopes):
            stats.notes.append(f"lines read from {name} entries")
        other_tracebacks = counted[0]
        if other_tracebacks:
            stats.notes.append(
                f"{other_tracebacks} tracebacks of other exceptions were not counted"
            )
        stats.notes.extend(clock.notes())

    def _json_record(
        self,
        number: int,
        collected: CollectedLine,
        open_records: dict[str, _Record],
        path: Path,
        clock: _Clock,
        stats: ReadStats,
        counted: list[int],
    ) -> Iterator[ErrorEvent]:
        """A JSON record is whole by itself; it also ends its stream's open text record."""
        assert collected.payload is not None
        fields = read_record(collected.payload)
        if fields is None:
            return
        stats.records += 1
        record = _Record(number, fields.ts_text, "iso", collected, fields.lines[0])
        record.body, record.hint = fields.lines[1:], fields.hint
        done = open_records.pop(collected.stream, None)
        if done is not None:
            yield from self._events(done, path, clock, stats, counted)
        yield from self._events(record, path, clock, stats, counted)

    def _events(
        self, record: _Record, path: Path, clock: _Clock, stats: ReadStats, counted: list[int]
    ) -> Iterator[ErrorEvent]:
        """The record's event, if it is a connection failure; `counted[0]` counts the
        tracebacks of other exceptions."""
        final = record.final_exception()
        if final is None:
            return
        exc_type, message, frame = final
        if not _CONNECTION_FAILURE.search(exc_type):
            counted[0] += 1
            return
        ts = clock.own(record.ts_text, record.ts_kind) if record.ts_text else None
        if ts is None:
            ts = clock.collector(record.collected)
        if ts is None:
            stats.skip(
                record.line,
                f"{exc_type} traceback without a time on its log line (add %(asctime)s to the log format)",
            )
            return
        module, _, name = exc_type.rpartition(".")
        yield ErrorEvent(
            ts=ts,
            message=message,
            source=SourceRef(self.name, str(path), record.line),
            error_class=f"{module}:{name}" if module else name,
            transaction=_transaction(record, frame),
        )


register(AppLog())
