"""Reading a stderr log's chunks into a `ServerLogState`: the fast path and its reference.

The fast path. A log of an incident is mostly connection lines, and a Python loop over
every line tops out near 200 MB/s before any parsing, so we never loop over lines. Each
chunk is read by one `findall` of the prefix's chunk pattern (`LinePrefix.bulk`), which
returns, in C, the fields of the lines that matter (connection received / authorized,
disconnection, FATAL, server start) and flags the lines that are not log lines;
`pglog.bulk.feed` applies them to the state in one flat loop. Line numbers are counted only
for the rows that need one (the first line of each FATAL group, the first skipped lines),
by finding their text again.

`StderrScanner.scan_lines` is the per-line reference (a `match` and a state method per
line): slower, simpler, and what the fast path must agree with
(`tests/test_pglog_fast_path.py`).

`scan_file` reads a file, or one byte range of it, chunk by chunk on a fixed grid (chunk k
is bytes `k * CHUNK` to `(k + 1) * CHUNK`), flushing the state's FATAL groups after each
chunk: so a range read apart (`pglog.ranges`) groups its events exactly as one pass does.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
from pgslots.events.pglog import bulk
from pgslots.events.pglog import lines as msg
from pgslots.events.pglog.prefix import LinePrefix
from pgslots.events.pglog.trace import ServerLogState
from pgslots.events.sources import MAX_SKIP_EXAMPLES as MAX_EXAMPLES
from pgslots.events.sources import ReadStats

CHUNK = (
    2 << 20
)  # small enough that a chunk's rows stay a few MB, large enough to cost nothing per chunk
MAX_LINE = 64 << 20  # a "line" longer than this is no log line: skip it without buffering it


class StderrScanner:
    """Feeds a `ServerLogState` from chunks of a stderr log.

    A chunk is the lines of `buf[start + 1 : end + 1]`: `buf[start]` is the newline that
    ends the line before them, and each ends with a newline."""

    def __init__(self, prefix: LinePrefix, state: ServerLogState, stats: ReadStats) -> None:
        self.prefix = prefix
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
            applied = bulk.feed(
                self.state,
                rows,
                self.fields,
                self.meanings,
                MAX_EXAMPLES - len(stats.skipped_examples),
                _RowFinder(self, buf, start, end).text_of,
            )
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
            get: Callable[..., Any] = found.groupdict(
                b""
            ).get  # b"" for a group that did not match, None for one the prefix lacks
            if not get("sec"):
                stats.skip(line, "not a log line for this log_line_prefix")
                continue
            pid, log, fatal = get("pid", b""), get("log"), found["fatal"]
            state.at(bulk.second_text(get("sec"), get("zone")))
            client = bulk.client_of(get("host", b""), get("remote", b""))
            if fatal is not None:
                group = state.fatal(
                    pid,
                    fatal.rstrip(b"\r"),
                    get("sqlstate"),
                    get("user"),
                    get("db"),
                    get("app"),
                    client,
                )
                if group is not None:
                    group[1] = line
            elif get("received"):
                state.received(pid, get("received"))
            elif get("disconnection"):
                if state.disconnection(pid):
                    state.unseen_session(msg.disconnection(buf[found.start("disconnection") : pos]))
            elif log.startswith(msg.AUTHORIZED):
                parsed = msg.authorized(log.rstrip(b"\r"))
                if parsed is None:
                    stats.skip(line, "connection authorized line not understood")
                else:
                    state.authorized(pid, parsed[0], parsed[1], parsed[2], client)
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
        """The text of `row`'s line (a disconnection), from its message on (b"" if not found)."""
        pos = self._find(row)
        if pos is None:
            return b""
        self.pos = pos
        found = self.scanner.pattern.match(self.buf, pos, self.end)
        end = self.buf.find(b"\n", pos + 1, self.end)
        return (
            self.buf[found.start("disconnection") : end if end >= 0 else self.end]
            if found is not None
            else b""
        )

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
                self.bad_rows = (
                    m.start()
                    for m in self.scanner.pattern.finditer(buf, self.start, self.end)
                    if not m["sec"]
                )
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


def scan_file(
    handle: IO[bytes],
    path: Path,
    scanner: StderrScanner,
    *,
    exact: bool = False,
    start: int = 0,
    end: int | None = None,
    head: bytes = b"",
    progress: Any = None,
) -> Iterator[ErrorEvent]:
    """Scan the lines of `handle` from `start` (a line's start) to `end` (a line's start, or
    None: the end of the file), yielding the state's events after each chunk. `head` is what
    was read from `start` already, if anything (a `.gz` stream cannot seek back cheaply)."""
    state = scanner.state
    scan = scanner.scan_lines if exact else scanner.scan
    carry = b""  # the unfinished last line of the previous chunk
    for data in _pieces(handle, path, start, end, head):
        if progress is not None:
            progress(len(data))
        first, last = data.find(b"\n"), data.rfind(b"\n")
        if first < 0:
            carry += data
            if len(carry) > MAX_LINE:
                scanner.stats.skip(
                    scanner.line_base + 1, f"a line longer than {MAX_LINE >> 20} MiB"
                )
                carry = b""
        else:
            line = b"\n" + carry + data[: first + 1]  # the line the previous chunk began
            scan(line, 0, len(line) - 1)
            if last > first:
                scan(data, first, last)  # every other whole line, in place
            carry = data[last + 1 :]
            yield from state.flush()
        del data
    if carry.strip():
        scan(b"\n" + carry + b"\n", 0, len(carry) + 1)


def _pieces(
    handle: IO[bytes], path: Path, start: int, end: int | None, head: bytes
) -> Iterator[bytes]:
    """The bytes from `start` to `end` (None: to the end of the file, as it is then), in
    pieces that end on the chunk grid; `head`, when given, is what was read from `start` already."""
    if head:
        yield head
    else:
        handle.seek(start)
    pos = start + len(head)
    while end is None or pos < end:
        data = _read(
            handle,
            path,
            CHUNK - pos % CHUNK if end is None else min(CHUNK - pos % CHUNK, end - pos),
        )
        if not data:
            return
        pos += len(data)
        yield data


def _read(handle: IO[bytes], path: Path, size: int) -> bytes:
    try:
        return handle.read(size)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None
