"""PostgreSQL stderr logs (`log_destination = 'stderr'`, with or without the logging
collector), with any `log_line_prefix`.

The lines are read chunk by chunk by `pglog.scan` (one `findall` per chunk, then one flat
loop over the rows that matter; `PgStderr(exact=True)` takes the per-line reference path
instead). A large plain file is read by several processes at once, one byte range each,
stitched back into the same result as one pass (`pglog.workers`, `pglog.ranges`);
`ReadOptions.jobs` says how many (None: one per CPU, at most 3, for files of 64 MiB or more).

FATAL lines come out pre-counted (`ErrorEvent.count`), grouped per minute (per second when
the timeline needs it), message, user, database, application, client and SQLSTATE, each
group pointing at its first line.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pgslots.errors import InputError
from pgslots.events.model import ErrorEvent
from pgslots.events.pglog import scan, workers
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
from pgslots.events.pglog.ranges import ReadInOrder, stitch
from pgslots.events.pglog.scan import StderrScanner, scan_file
from pgslots.events.pglog.trace import ConnectionTrace, ServerLogState
from pgslots.events.sources import ReadOptions, ReadStats, open_binary, register

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


class PgStderr:
    name = "pg-stderr"
    description = "PostgreSQL stderr log, any log_line_prefix (--log-line-prefix to give it)"
    priority = (
        55  # before applog (60): its sniff (a PostgreSQL severity on most lines) is the stricter
    )

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact  # the per-line reference path instead of the fast one (tests)

    def sniff(self, head: str, path: Path) -> bool:
        """Most lines carry a PostgreSQL severity (`LOG:  `, `FATAL:  `, two spaces)."""
        lines = sample_lines(head.encode("utf-8", "replace"), 200)
        if not lines or sum(1 for line in lines if line.lstrip().startswith(b"{")) * 2 > len(lines):
            return (
                False  # JSON lines (an application's JSON log quoting a FATAL) are not a stderr log
            )
        with_severity = sum(1 for line in lines if _HEAD_SEVERITY.search(line))
        return with_severity * 2 >= len(lines)

    def read(self, path: Path, options: ReadOptions, stats: ReadStats) -> Iterator[ErrorEvent]:
        with open_binary(path) as handle:
            head = _read(handle, path)
            prefix, recognised = choose_prefix(
                options.log_line_prefix, sample_lines(head, SAMPLE_LINES), path
            )
            clock = Clock(options.tz)
            state = ServerLogState(self.name, str(path), clock, options.group_seconds)
            state.trace.prefix, state.trace.prefix_recognised = prefix.text, recognised
            scanner = StderrScanner(prefix, state, stats)
            ranges = self._ranges(handle, prefix, options)
            if len(ranges) < 2:
                yield from scan_file(
                    handle, path, scanner, exact=self.exact, head=head, progress=options.progress
                )
            else:
                yield from self._read_ranges(handle, path, scanner, ranges, options)
        stats.extra["connection_trace"] = _finish(state, clock, stats)
        yield from state.flush()

    def _ranges(
        self, handle: IO[bytes], prefix: LinePrefix, options: ReadOptions
    ) -> list[tuple[int, int | None]]:
        """The byte ranges to read apart: several for a large plain file (not `.gz`) whose
        prefix has the pid (%p), else none."""
        if (
            self.exact
            or "pid" not in prefix.fields
            or not isinstance(handle, io.BufferedReader)
            or not workers.can_fork()
        ):
            return []
        size = os.fstat(handle.fileno()).st_size
        jobs = options.jobs or (workers.default_jobs() if size >= workers.AUTO_MIN_BYTES else 1)
        return workers.plan(handle, size, jobs) if jobs > 1 else []

    def _read_ranges(
        self,
        handle: IO[bytes],
        path: Path,
        scanner: StderrScanner,
        ranges: list[tuple[int, int | None]],
        options: ReadOptions,
    ) -> Iterator[ErrorEvent]:
        """The first range here while workers read the others, then each stitched on (or,
        when it cannot be exactly, read here in order)."""
        state, stats, progress = scanner.state, scanner.stats, options.progress
        with workers.started(
            path, self.name, scanner.prefix.text, ranges[1:], options.tz, options.group_seconds
        ) as running:
            yield from scan_file(handle, path, scanner, end=ranges[0][1], progress=progress)
            for worker in running:
                result = worker.result()
                try:
                    if result is None:
                        raise ReadInOrder("the worker could not read its range")
                    batches = stitch(state, result, scanner.line_base, worker.marked, worker.spill)
                except ReadInOrder:
                    yield from scan_file(
                        handle, path, scanner, start=worker.start, end=worker.end, progress=progress
                    )
                    continue
                if progress is not None:
                    progress((worker.end or os.fstat(handle.fileno()).st_size) - worker.start)
                stats.records += result.records
                for line, why in result.skip_examples:
                    stats.skip(None if line is None else line + scanner.line_base, why)
                stats.skipped += result.skipped - len(result.skip_examples)
                scanner.line_base += result.lines
                for batch in batches:
                    state.groups = batch
                    yield from state.flush()


def _finish(state: ServerLogState, clock: Clock, stats: ReadStats) -> ConnectionTrace:
    trace = state.finish()
    for zone in sorted(clock.unknown_zones):
        stats.notes.append(
            f"time zone {zone!r} is ambiguous or unknown: its times were read in --tz"
        )
    return trace


def _read(handle: IO[bytes], path: Path) -> bytes:
    try:
        return handle.read(scan.CHUNK)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read past a damaged part: {exc}", path=str(path)) from None


register(PgStderr())
