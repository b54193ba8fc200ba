"""PostgreSQL stderr logs (`log_destination = 'stderr'`, with or without the logging
collector), with any `log_line_prefix`.

The fast path. A log of an incident is mostly connection lines, and a Python loop over
every line tops out near 200 MB/s before any parsing, so we never loop over lines. Each
chunk of 8 MiB is read by one `findall` of the prefix's chunk pattern (`LinePrefix.bulk`),
which returns, in C, the fields of the lines that matter (connection received /
authorized, disconnection, FATAL, server start) and flags the lines that are not log
lines; `pglog.bulk.feed` applies them to the shared `ServerLogState` in one flat loop. Line
numbers are counted only for the rows that need one (the first line of each FATAL group,
the first skipped lines), by finding their text again.

`scan_lines` is the per-line reference (a `match` and a state method per line): slower,
simpler, and what the fast path must agree with (`--exact`-style tests in
`tests/test_pglog_fast_path.py`).

FATAL lines come out pre-counted (`ErrorEvent.count`), grouped per minute (per second when
the timeline needs it), message, user, database, application, client and SQLSTATE, each
group pointing at its first line.
"""

from __future__ import annotations

import gc
import re

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
from pgslots.events.pglog import bulk
from pgslots.events.pglog import lines as msg
from pgslots.events.pglog.clock import Clock
from pgslots.events.pglog.prefix import (
    SEVERITIES,
    LinePrefix,
    compile_prefix,
    describe_mismatch,
    match_count,
    recognise,
    sample_lines,
)
from pgslots.events.pglog.trace import ConnectionTrace, ServerLogState
from pgslots.events.sources import MAX_SKIP_EXAMPLES as MAX_EXAMPLES
from pgslots.events.sources import ReadOptions, ReadStats, open_binary, register

CHUNK = 8 << 20
MAX_LINE = 64 << 20  # a "line" longer than this is no log line: skip it without buffering it
SAMPLE_LINES = 1000
_HEAD_SEVERITY = re.compile(rb"(?:" + "|".join(SEVERITIES).encode() + rb"):  ")


def choose_prefix(given: str | None, sample: list[bytes], path: Path) -> tuple[LinePrefix, bool]:
    """The prefix to parse with, and whether we recognised it (rather than being told).

    A given prefix that parses none of the first lines, or no prefix recognised, is an
    input error that says what the lines look like."""
    if not sample:
        raise InputError("no log lines found", path=str(path))
    if given is not None:
        prefix = compile_prefix(given)
        if match_count(prefix, sample) == 0:
            raise InputError(describe_mismatch(sample, given), path=str(path))
        recognised = False
    else:
        found = recognise(sample)
        if found is None:
            raise InputError(describe_mismatch(sample, None), path=str(path))
        prefix, recognised = found, True
    if not prefix.has_time:
        raise InputError(
            f"log_line_prefix {prefix.text!r} has no time escape (%m, %t or %n): the events "
            "cannot be placed in time; use the csvlog or jsonlog output, or a prefix with %m",
            path=str(path),
        )
    return prefix, recognised


class StderrScanner:
    """Feeds a `ServerLogState` from chunks of a stderr log.

    A chunk is the lines of `buf[start + 1 : end + 1]`: `buf[start]` is the newline that
    ends the line before them, and each ends with a newline."""

    def __init__(self, prefix: LinePrefix, state: ServerLogState, stats: ReadStats) -> None:
        self.pattern = prefix.bulk
        self.state = state
        self.stats = stats
        self.fields = bulk.Fields(self.pattern.groupindex)
        self.meanings: dict[bytes, tuple[Any, ...]] = {}
        self.line_base = 0  # lines before the current chunk

    # -- the fast path -----------------------------------------------------------------------

    def scan(self, buf: bytes, start: int, end: int) -> None:
        stats = self.stats
        collecting = gc.isenabled()
        gc.disable()  # the rows are tuples of bytes, no cycles: a collection would only walk them
        try:
            rows = self.pattern.findall(buf, start, end)
            applied = bulk.feed(self.state, rows, self.fields, self.meanings,
                                MAX_EXAMPLES - len(stats.skipped_examples), _RowFinder(self, buf, start, end).text_of)
            del rows
        finally:
            if collecting:
                gc.enable()
        if applied.examples:
            finder = _RowFinder(self, buf, start, end)
            for row, why in applied.examples:
                stats.skip(finder.line_of(row), why)
        stats.skipped += applied.skipped - len(applied.examples)
        finder = _RowFinder(self, buf, start, end)
        for group, row in applied.new_groups:
            group[1] = finder.line_of(row)
        lines = finder.newlines_before(end + 1) - 1
        stats.records += lines
        self.line_base += lines

    # -- the per-line reference --------------------------------------------------------------

    def scan_lines(self, buf: bytes, start: int, end: int) -> None:
        """The same as `scan`, one line at a time through the state's methods."""
        state, stats, match = self.state, self.stats, self.pattern.match
        line = self.line_base
        pos = start
        while pos < end:
            line += 1
            found = match(buf, pos, end)
            next_end = buf.find(b"\n", pos + 1, end)
            pos = end if next_end < 0 else next_end
            if found is None:
                continue
            get = found.groupdict(b"").get
            if not get("sec"):
                stats.skip(line, "not a log line for this log_line_prefix")
                continue
            pid, log, fatal = get("pid", b""), get("log"), found["fatal"]
            state.at(bulk.second_text(get("sec"), get("zone")))
            client = bulk.client_of(get("host", b""), get("remote", b""))
            if fatal is not None:
                group = state.fatal(pid, fatal.rstrip(b"\r"), get("sqlstate"), get("user"), get("db"), get("app"), client)
                if group is not None:
                    group[1] = line
            elif log.startswith(msg.RECEIVED):
                state.received(pid, log[len(msg.RECEIVED) :])
            elif log.startswith(msg.AUTHORIZED):
                parsed = msg.authorized(log.rstrip(b"\r"))
                if parsed is None:
                    stats.skip(line, "connection authorized line not understood")
                else:
                    state.authorized(pid, parsed[0], parsed[1], parsed[2], client)
            elif log.startswith(msg.DISCONNECTION):
                if state.disconnection(pid):
                    state.unseen_session(msg.disconnection(buf[found.start("log") : pos]))
            elif log.startswith(msg.REPLICATION_AUTHORIZED):
                state.replication(pid)
            elif log.startswith(msg.STARTING):
                version = msg.server_version(log)
                if version:
                    state.version(version)
            else:
                state.restart()
        stats.records += line - self.line_base
        self.line_base = line


class _RowFinder:
    """Finds the lines of given `findall` rows in a chunk, in file order: by the row's
    time text, checked by matching the line again. Rows without a time (lines that are no
    log line) are found by going through the chunk's matches."""

    def __init__(self, scanner: StderrScanner, buf: bytes, start: int, end: int) -> None:
        self.scanner, self.buf, self.start, self.end = scanner, buf, start, end
        self.pos = start  # where the previous row was found
        self.counted = (start, 0)  # (position, newlines in buf[start:position])
        self.bad_rows: Iterator[Any] | None = None

    def newlines_before(self, pos: int) -> int:
        """Newlines in `buf[start:pos]`, counted on from the previous call (`pos` only grows)."""
        at, newlines = self.counted
        newlines += self.buf.count(b"\n", at, pos)
        self.counted = (pos, newlines)
        return newlines

    def text_of(self, row: tuple[bytes, ...]) -> bytes:
        """The text of `row`'s line, from the log message on (b"" if not found)."""
        pos = self._find(row)
        if pos is None:
            return b""
        self.pos = pos
        found = self.scanner.pattern.match(self.buf, pos, self.end)
        end = self.buf.find(b"\n", pos + 1, self.end)
        return self.buf[found.start("log") : end if end >= 0 else self.end] if found is not None else b""

    def line_of(self, row: tuple[bytes, ...]) -> int | None:
        pos = self._find(row)
        if pos is None:
            return None
        self.pos = pos
        return self.scanner.line_base + self.newlines_before(pos + 1)

    def _find(self, row: tuple[bytes, ...]) -> int | None:
        """The position of the newline that starts `row`'s line."""
        fields, buf, match = self.scanner.fields, self.buf, self.scanner.pattern.match
        sec = row[fields.sec]
        if not sec:
            if self.bad_rows is None:
                self.bad_rows = (m.start() for m in self.scanner.pattern.finditer(buf, self.start, self.end) if not m["sec"])
            return next(self.bad_rows, None)
        stamp = sec + row[fields.frac] + (b" " + row[fields.zone] if row[fields.zone] else b"")
        at = buf.find(stamp, self.pos, self.end)
        while at >= 0:
            start = buf.rfind(b"\n", 0, at)
            found = match(buf, start, self.end)
            if found is not None and found.groups(b"") == row:
                return start
            at = buf.find(stamp, at + 1, self.end)
        return None


class PgStderr:
    name = "pg-stderr"
    description = "PostgreSQL stderr log, any log_line_prefix (--log-line-prefix to give it)"
    priority = 60

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact  # the per-line reference path instead of the fast one (tests)

    def sniff(self, head: str, path: Path) -> bool:
        """Most lines carry a PostgreSQL severity (`LOG:  `, `FATAL:  `, two spaces)."""
        lines = sample_lines(head.encode("utf-8", "replace"), 200)
        if not lines:
            return False
        with_severity = sum(1 for line in lines if _HEAD_SEVERITY.search(line))
        return with_severity * 2 >= len(lines)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        with open_binary(path) as handle:
            data = _read(handle, path)
            prefix, recognised = choose_prefix(options.log_line_prefix, sample_lines(data, SAMPLE_LINES), path)
            clock = Clock(options.tz)
            state = ServerLogState(self.name, str(path), clock, options.group_seconds)
            state.trace.prefix, state.trace.prefix_recognised = prefix.text, recognised
            scanner = StderrScanner(prefix, state, stats)
            scan = scanner.scan_lines if self.exact else scanner.scan
            carry = b""  # the unfinished last line of the previous chunk
            while data:
                if options.progress is not None:
                    options.progress(len(data))
                first, last = data.find(b"\n"), data.rfind(b"\n")
                if first < 0:
                    carry += data
                    if len(carry) > MAX_LINE:
                        stats.skip(scanner.line_base + 1, f"a line longer than {MAX_LINE >> 20} MiB")
                        carry = b""
                else:
                    line = b"\n" + carry + data[: first + 1]  # the line the previous chunk began
                    scan(line, 0, len(line) - 1)
                    if last > first:
                        scan(data, first, last)  # every other whole line, in place
                    carry = data[last + 1 :]
                    yield from state.flush()
                del data
                data = _read(handle, path)
            if carry.strip():
                scan(b"\n" + carry + b"\n", 0, len(carry) + 1)
        stats.extra["connection_trace"] = _finish(state, clock, stats)
        yield from state.flush()


def _finish(state: ServerLogState, clock: Clock, stats: ReadStats) -> ConnectionTrace:
    trace = state.finish()
    for zone in sorted(clock.unknown_zones):
        stats.notes.append(f"time zone {zone!r} is ambiguous or unknown: its times were read in --tz")
    return trace


def _read(handle: IO[bytes], path: Path) -> bytes:
    try:
        return handle.read(CHUNK)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None


register(PgStderr())
