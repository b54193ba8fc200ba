"""PostgreSQL stderr logs (`log_destination = 'stderr'`, with or without the logging
collector), with any `log_line_prefix`.

The fast path. A log of an incident is mostly connection lines, and a Python loop over
every line tops out near 200 MB/s before any parsing, so we never loop over lines. Each
chunk of 8 MiB is screened with `bytes.find` for the few messages that matter (FATAL,
`connection authorized`, `disconnection`, and `connection received` when the prefix lacks
the client address), at memchr speed; only those lines are parsed, with one compiled
prefix regex matched from the line's start to where the needle was found. Everything
else is counted, not read: lines by `bytes.count`, malformed lines by one regex that looks
only at each line's first characters.

FATAL lines come out pre-counted (`ErrorEvent.count`), grouped per second, message, user,
database, application, client and SQLSTATE, each group pointing at its first line.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
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

# Kinds of the lines we screen for, in the low bits of each hit (position * 8 + kind).
FATAL, AUTHORIZED, DISCONNECTION, RECEIVED, REPLICATION, STARTING, READY = range(7)
NEEDLES: tuple[tuple[int, bytes], ...] = (
    (FATAL, b"FATAL:  "),
    (AUTHORIZED, b"LOG:  " + msg.AUTHORIZED),
    (DISCONNECTION, b"LOG:  " + msg.DISCONNECTION),
    (RECEIVED, b"LOG:  " + msg.RECEIVED),
    (REPLICATION, b"LOG:  " + msg.REPLICATION_AUTHORIZED),
    (STARTING, b"LOG:  " + msg.STARTING),
    (READY, b"LOG:  " + msg.READY),
)
_RECEIVED_AT = b"LOG:  " + msg.RECEIVED + b"host="
_SESSION_END = b"LOG:  " + msg.DISCONNECTION  # (a FATAL also ends one: see client_of's callers)
CONTEXT = 256 << 10  # bytes of already-scanned lines kept for looking a pid's lines up
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


def _lead_pattern(prefix: LinePrefix) -> bytes:
    """The start every line must have: the prefix's regex up to its first free-text field
    (cheap to check on every line, and enough to tell log lines from foreign ones)."""
    source = prefix.regex.pattern
    cut = min((source.find(b"(?P<" + name.encode()) for name in ("user", "db", "app", "remote", "host", "backend_type", "tag")
               if source.find(b"(?P<" + name.encode()) > 0), default=len(source))
    lead = source[:cut]
    try:
        re.compile(lead)
    except re.error:  # cut inside an optional group (after %q): the time alone will do
        lead = source[: source.find(b")") + 1]
    return lead


class StderrScanner:
    """Feeds a `ServerLogState` from chunks of a stderr log."""

    def __init__(self, prefix: LinePrefix, state: ServerLogState, stats: ReadStats) -> None:
        self.prefix = prefix
        self.state = state
        self.stats = stats
        self.match_line = prefix.line_regex.fullmatch
        self.bad_line = re.compile(rb"\n(?!\t|\r?\n|" + _lead_pattern(prefix) + rb")")
        groups = prefix.regex.groupindex
        self.time_kind = "m" if "m" in groups else "t" if "t" in groups else "n"
        names = (self.time_kind, "pid", "user", "db", "app", "remote", "host", "sqlstate")
        self.match_prefix = prefix.regex.fullmatch
        # One C call picks the eight fields out of `groups() + (None,)`; a field the prefix
        # lacks points at the trailing None.
        absent = prefix.regex.groups
        self.pick = operator.itemgetter(*(groups[name] - 1 if name in groups else absent for name in names))
        # The client of a line whose prefix lacks %h/%r is on its pid's `connection received`
        # line, a few lines up. We look it up only for the lines that need it (FATALs and
        # authorizations), by searching backwards for the pid as the prefix writes it:
        # cheaper than parsing every `connection received` line. When the prefix puts no
        # literal text around %p to search for, we parse them all instead.
        around = re.search(r"(.)%p(.)", prefix.text)
        self.pid_context = (around.group(1).encode(), around.group(2).encode()) if around else None
        eager = not prefix.has_client and self.pid_context is None
        self.needles = [n for n in NEEDLES if n[0] != RECEIVED or eager]
        self.lazy_client = not prefix.has_client and not eager
        self.line_base = 0  # lines before the current chunk
        self._count_from = (0, 0)  # (position, line) of the last line-number lookup

    def line_at(self, buf: bytes, pos: int) -> int:
        """1-based line number of the line holding `pos` (buf starts with an extra b"\\n")."""
        last_pos, last_line = self._count_from
        if pos < last_pos:
            last_pos, last_line = 0, 0
        line = last_line + buf.count(b"\n", last_pos, pos)
        self._count_from = (pos, line)
        return self.line_base + line

    def _skip(self, buf: bytes, pos: int, reason: str) -> None:
        stats = self.stats
        line = self.line_at(buf, pos) if len(stats.skipped_examples) < MAX_EXAMPLES else None
        stats.skip(line, reason)

    def scan(self, buf: bytes, offset: int) -> None:
        """Process the lines of `buf` from `offset` on. `buf[offset - 1]` is a line end and
        every line ends with one; what comes before `offset` is context already processed,
        kept for looking up the pid's earlier lines."""
        stats = self.stats
        end = len(buf) - 1
        self._count_from = (offset - 1, 0)
        lines = buf.count(b"\n", offset)
        stats.records += lines
        bad = self.bad_line.findall(buf, offset - 1, end)
        if bad:
            shown = 0
            room = MAX_EXAMPLES - len(stats.skipped_examples)
            for found in itertools.islice(self.bad_line.finditer(buf, offset - 1, end), max(room, 0)):
                self._skip(buf, found.end(), "not a log line for this log_line_prefix")
                shown += 1
            stats.skipped += len(bad) - shown
        hits: list[int] = []
        append = hits.append
        find = buf.find
        for kind, needle in self.needles:
            pos = find(needle, offset)
            while pos >= 0:
                append(pos << 3 | kind)
                pos = find(needle, pos + 1)
        hits.sort()
        self._process(buf, hits)
        self.line_base += lines

    def client_of(self, buf: bytes, pid: bytes, pos: int) -> bytes | None:
        """The host of the most recent `connection received` line of `pid` before `pos`,
        searched backwards through the buffer; None when another session of that pid, or
        the start of the buffer, comes first."""
        assert self.pid_context is not None
        left, right = self.pid_context
        needle = left + pid + right
        rfind = buf.rfind
        at = rfind(needle, 0, pos)
        while at >= 0:
            start = rfind(b"\n", 0, at) + 1
            line_end = buf.find(b"\n", at)
            for marker, host_at in ((_RECEIVED_AT, True), (_SESSION_END, False)):
                hit = buf.find(marker, at, line_end)
                if hit >= 0:
                    found = self.match_prefix(buf, start, hit)
                    if found is not None and self.pick(found.groups() + (None,))[1] == pid:
                        if not host_at:
                            return None  # an earlier session of this pid ended there
                        host_start = hit + len(_RECEIVED_AT)
                        host_end = buf.find(b" ", host_start, line_end)
                        return buf[host_start : host_end if host_end >= 0 else line_end].rstrip(b"\r")
            at = rfind(needle, 0, start)
        return None

    def _process(self, buf: bytes, hits: list[int]) -> None:
        """Parse the screened lines, in file order. The hot loop: keep it flat."""
        state = self.state
        at = state.at
        match_prefix = self.match_prefix
        rfind = buf.rfind
        find = buf.find
        pick = self.pick
        time_kind = self.time_kind
        lazy_client = self.lazy_client
        sessions = state.sessions
        none = (None,)
        for hit in hits:
            kind = hit & 7
            pos = hit >> 3
            start = rfind(b"\n", 0, pos) + 1
            found = match_prefix(buf, start, pos)
            if found is None:
                self._not_parsed(buf, start, pos)
                continue
            stamp, pid, user, db, app, remote, host, sqlstate = pick(found.groups() + none)
            second = stamp[:19] + stamp[23:] if time_kind == "m" else stamp if time_kind == "t" else stamp[:-4]
            if second != state._second:
                at(second)
            end = find(b"\n", pos)
            client = host or (remote.partition(b"(")[0] if remote else None)
            if kind == FATAL:
                if client is None and lazy_client and pid not in sessions:
                    client = self.client_of(buf, pid, start)
                new = state.fatal(pid, buf[pos + 8 : end].rstrip(b"\r"), sqlstate, user, db, app, client)
                if new is not None:
                    new[1] = self.line_at(buf, pos)
            elif kind == AUTHORIZED:
                parsed = msg.authorized(buf[pos + 6 : end].rstrip(b"\r"))
                if parsed is None:
                    self._skip(buf, pos, "connection authorized line not understood")
                    continue
                if client is None and lazy_client:
                    client = self.client_of(buf, pid, start)
                state.authorized(pid, parsed[0], parsed[1], parsed[2], client)
            elif kind == DISCONNECTION:
                ended = msg.disconnection(buf[pos + 6 : end])
                if ended is None:
                    self._skip(buf, pos, "disconnection line not understood")
                    continue
                state.disconnection(pid, ended[0], user or ended[1], db or ended[2], client or ended[3])
            elif kind == RECEIVED:
                state.received(pid, msg.received_host(buf[pos + 6 : end]))
            elif kind == REPLICATION:
                state.replication(pid)
            elif kind == STARTING:
                version = msg.server_version(buf[pos + 6 : end])
                if version:
                    state.version(version)
            elif kind == READY:
                state.restart()

    def _not_parsed(self, buf: bytes, start: int, pos: int) -> None:
        """A needle in a line whose prefix did not parse up to it: a continuation line or
        another message quoting the text (both fine), or a malformed line (counted)."""
        if buf[start : start + 1] == b"\t":
            return
        end = buf.find(b"\n", pos)
        if self.match_line(buf, start, end if end >= 0 else len(buf)) is None:
            self._skip(buf, pos, "line does not parse with this log_line_prefix")


class PgStderr:
    name = "pg-stderr"
    description = "PostgreSQL stderr log, any log_line_prefix (--log-line-prefix to give it)"
    priority = 60

    def sniff(self, head: str, path: Path) -> bool:
        """Most lines carry a PostgreSQL severity (`LOG:  `, `FATAL:  `, two spaces)."""
        lines = sample_lines(head.encode("utf-8", "replace"), 200)
        if not lines:
            return False
        with_severity = sum(1 for line in lines if _HEAD_SEVERITY.search(line))
        return with_severity * 2 >= len(lines)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        with open_binary(path) as handle:
            first = _read(handle, path)
            prefix, recognised = choose_prefix(options.log_line_prefix, sample_lines(first, SAMPLE_LINES), path)
            clock = Clock(options.tz)
            state = ServerLogState(self.name, str(path), clock)
            state.trace.prefix, state.trace.prefix_recognised = prefix.text, recognised
            scanner = StderrScanner(prefix, state, stats)
            carry = context = b""
            data = first
            while data:
                if options.progress is not None:
                    options.progress(len(data))
                data = carry + data
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) > MAX_LINE:
                    stats.skip(scanner.line_base + 1, f"a line longer than {MAX_LINE >> 20} MiB")
                    carry, data = b"", _read(handle, path)
                    continue
                carry = data[cut:]
                if cut:
                    buf = b"\n" + context + data[:cut]
                    scanner.scan(buf, 1 + len(context))
                    context = _tail_lines(buf)
                    yield from state.flush()
                data = _read(handle, path)
            if carry.strip():
                scanner.scan(b"\n" + context + carry + b"\n", 1 + len(context))
        stats.extra["connection_trace"] = _finish(state, clock, stats)
        yield from state.flush()


def _finish(state: ServerLogState, clock: Clock, stats: ReadStats) -> ConnectionTrace:
    trace = state.finish()
    for zone in sorted(clock.unknown_zones):
        stats.notes.append(f"time zone {zone!r} is ambiguous or unknown: its times were read in --tz")
    return trace


def _tail_lines(buf: bytes) -> bytes:
    """The last whole lines of `buf`, about `CONTEXT` bytes of them."""
    if len(buf) <= CONTEXT:
        return buf[1:]
    return buf[buf.find(b"\n", len(buf) - CONTEXT) + 1 :]


def _read(handle: IO[bytes], path: Path) -> bytes:
    try:
        return handle.read(CHUNK)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None


register(PgStderr())
