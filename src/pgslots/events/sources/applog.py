"""Application logs with Python tracebacks: gunicorn's error log, uvicorn, Celery workers,
or anything written by `logging` with a timestamp at the start of each record.

A log is a sequence of records: a header line (time, level, message) and the lines after it
up to the next header, where tracebacks live. A record counts as one event when its last
traceback ends in a connection failure: `django.db.utils.OperationalError`,
`psycopg.OperationalError`, `psycopg2.OperationalError`, `psycopg_pool.PoolTimeout` and
their kin (`*.OperationalError`, `*.InterfaceError`, `psycopg_pool.TooManyRequests`). Python
prints the causes first, so the last exception line of a record is the one raised; its
message may run over several lines (psycopg's multi-attempt block, libpq's hints).

The event's time is its header's (a header without a zone is read in `--tz`). Its
transaction is the Celery task named in the header (`celery:<task>`), else the innermost
frame of the project itself (not site-packages, not the standard library) as
`path/to/module.py:function`. A record with a traceback but no time (uvicorn's default
format writes none) is counted as skipped: there is no honest time to give it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pgslots.events.model import ErrorEvent, SourceRef
from pgslots.events.sources import ReadOptions, ReadStats, numbered_lines, register
from pgslots.events.times import parse_time

# Header lines, most specific first. Each gives `ts` (may be absent) and `rest`.
_HEADERS = (
    # gunicorn error log: [2026-05-11 22:22:05 +0000] [7] [ERROR] message
    re.compile(r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?: [+-]\d{4})?)\] \[\d+\] \[[A-Z]+\] (?P<rest>.*)$"),
    # Celery worker: [2026-05-11 22:22:05,123: ERROR/ForkPoolWorker-3] message
    re.compile(r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:,\d+)?): [A-Z]+/[^\]]+\] (?P<rest>.*)$"),
    # logging's asctime first (Django, uvicorn with a log config, most apps)
    re.compile(
        r"^\[?(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z| ?[+-]\d{2}:?\d{2}| UTC)?)\]?"
        r"[\s|:-]+(?P<rest>.*)$"
    ),
    # uvicorn's default format: no time at all
    re.compile(r"^(?P<level>CRITICAL|ERROR|WARNING|INFO|DEBUG):\s+(?P<rest>.*)$"),
)
_TRACEBACK = "Traceback (most recent call last):"
_CHAIN = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line \d+, in (?P<func>.+)$')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?:: (?P<message>.*))?$")
_CELERY_TASK = re.compile(r"(?:^|\s)Task (?P<task>[\w.]+)\[[\w-]+\]|^(?P<task2>[\w.]+)\[[0-9a-f-]{36}\]:")
_CONNECTION_FAILURE = re.compile(
    r"(?:^|\.)(?:OperationalError|InterfaceError)$|^psycopg_pool\.(?:PoolTimeout|TooManyRequests|PoolClosed)$"
)
_NOT_PROJECT = ("site-packages", "dist-packages", "/lib/python", "<frozen", "<string>", "/lib64/python")


def _header(line: str) -> re.Match[str] | None:
    for pattern in _HEADERS:
        match = pattern.match(line)
        if match:
            return match
    return None


def is_project_frame(path: str) -> bool:
    return not any(part in path for part in _NOT_PROJECT)


def _frame_name(path: str, function: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{function.strip()}"


class _Record:
    """One log record: its header line and the lines after it."""

    __slots__ = ("line", "ts_text", "header", "body")

    def __init__(self, line: int, ts_text: str | None, header: str) -> None:
        self.line = line
        self.ts_text = ts_text
        self.header = header
        self.body: list[str] = []

    def final_exception(self) -> tuple[str, str, str | None] | None:
        """(type, message, innermost project frame) of the exception raised last, or None
        when the record holds no traceback."""
        if not any(line.startswith(_TRACEBACK) for line in self.body):
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
            while at < len(segment) and (segment[at].startswith((" ", "\t")) or not segment[at].strip()):
                frame = _FRAME.match(segment[at])
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


class AppLog:
    name = "applog"
    description = "application logs with Python tracebacks (gunicorn, uvicorn, Celery workers, logging)"
    priority = 60

    def sniff(self, head: str, path: Path) -> bool:
        if _TRACEBACK in head and re.search(r"OperationalError|InterfaceError|PoolTimeout", head):
            return True
        lines = [line for line in head.splitlines()[:50] if line.strip()]
        headers = sum(1 for line in lines if _HEADERS[0].match(line) or _HEADERS[1].match(line))
        return bool(lines) and headers >= max(1, len(lines) // 2)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        record: _Record | None = None
        other_tracebacks = 0
        for number, line in numbered_lines(path, options):
            match = _header(line)
            if match is None:
                if record is not None:
                    record.body.append(line)
                elif line.startswith(_TRACEBACK):
                    record = _Record(number, None, "")
                    record.body.append(line)
                continue
            if record is not None:
                event, other = self._event(record, path, options, stats)
                other_tracebacks += other
                if event is not None:
                    yield event
            stats.records += 1
            record = _Record(number, match.groupdict().get("ts"), match["rest"])
        if record is not None:
            event, other = self._event(record, path, options, stats)
            other_tracebacks += other
            if event is not None:
                yield event
        if other_tracebacks:
            stats.notes.append(f"{other_tracebacks} tracebacks of other exceptions were not counted")

    def _event(
        self, record: _Record, path: Path, options: ReadOptions, stats: ReadStats
    ) -> tuple[ErrorEvent | None, int]:
        final = record.final_exception()
        if final is None:
            return None, 0
        exc_type, message, frame = final
        if not _CONNECTION_FAILURE.search(exc_type):
            return None, 1
        parsed = parse_time(record.ts_text, options.tz) if record.ts_text else None
        if parsed is None:
            stats.skip(record.line, f"{exc_type} traceback without a time on its log line (add %(asctime)s to the log format)")
            return None, 0
        ts, naive = parsed
        if naive:
            stats.naive_time()
        task = _CELERY_TASK.search(record.header)
        transaction = f"celery:{task['task'] or task['task2']}" if task else frame
        module, _, name = exc_type.rpartition(".")
        return (
            ErrorEvent(
                ts=ts,
                message=message,
                source=SourceRef(self.name, str(path), record.line),
                error_class=f"{module}:{name}" if module else name,
                transaction=transaction,
            ),
            0,
        )


register(AppLog())
