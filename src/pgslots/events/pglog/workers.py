"""A large plain stderr log read by several processes at once.

The file is cut on the chunk grid into as many byte ranges as jobs (`plan`), each starting
at a line's start. This process reads the first range itself, in order, while forked
workers read the others apart (`read_range`: a `pglog.ranges.RangeState`); then, range
after range, it stitches each worker's result onto its own state (`ranges.stitch`), or,
when that cannot be exact, reads the range again itself. Workers are forked from this
process, so they start at once and share its imported code; each hands back one pickled
`RangeResult` (a few hundred kB: its FATAL groups, the lines that depend on the past, its
sessions still open) and answers one question: which of the pids open at its boundary it
saw connect.

Gzip files are read in one pass: a deflate stream cannot be entered in the middle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from pgslots.events.pglog import scan
from pgslots.events.pglog.clock import Clock
from pgslots.events.pglog.prefix import compiled
from pgslots.events.pglog.ranges import RangeResult, RangeState, ReadInOrder
from pgslots.events.pglog.scan import StderrScanner, scan_file
from pgslots.events.sources import MAX_SKIP_EXAMPLES, ReadStats

AUTO_MIN_BYTES = 64 << 20  # below this, one process (the workers would cost more than they save)
AUTO_MAX_JOBS = 3  # each worker adds ~45 MB of RSS (most of it shared with this process): 3 stay under 150 MB together
FORK = True  # False: read the ranges one after the other in this process (tests of the stitching)


def default_jobs() -> int:
    """One process per CPU this process may run on, up to `AUTO_MAX_JOBS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus, AUTO_MAX_JOBS)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def plan(handle: IO[bytes], size: int, jobs: int) -> list[tuple[int, int | None]]:
    """Up to `jobs` byte ranges of about equal size covering the file, each starting where a
    chunk of the grid (`scan.CHUNK`) begins its lines: after the previous chunk's last
    newline. The last one ends where the file does when it is read (None), as one pass would."""
    chunk = scan.CHUNK
    chunks = -(-size // chunk)
    starts = [0]
    for k in range(1, jobs):
        grid = round(k * chunks / jobs) * chunk
        if grid <= starts[-1] + chunk or grid >= size:
            continue
        handle.seek(grid - chunk)
        newline = handle.read(chunk).rfind(b"\n")
        if newline >= 0 and grid - chunk + newline + 1 > starts[-1]:
            starts.append(grid - chunk + newline + 1)
    return list(zip(starts, [*starts[1:], None], strict=True))


class _RangeStats(ReadStats):
    """`ReadStats` that keeps its first skipped lines as (line, why), to renumber them."""

    def __init__(self, path: str, fmt: str) -> None:
        super().__init__(path, fmt)
        self.raw: list[tuple[int | None, str]] = []

    def skip(self, line: int | None, reason: str = "", unit: str = "line") -> None:
        if len(self.raw) < MAX_SKIP_EXAMPLES:
            self.raw.append((line, reason))
        super().skip(line, reason, unit)


def read_range(
    path: Path,
    fmt: str,
    prefix: str,
    start: int,
    end: int | None,
    tz: dt.tzinfo,
    group_seconds: int,
    spill: IO[bytes],
) -> tuple[RangeResult, RangeState]:
    """Read the lines of `path` from `start` to `end` apart from those before them, its
    FATAL groups pickled to `spill`."""
    state = RangeState(fmt, str(path), Clock(tz), group_seconds, spill)
    stats = _RangeStats(str(path), fmt)
    scanner = StderrScanner(compiled(prefix), state, stats)
    with path.open("rb") as handle:
        for _ in scan_file(handle, path, scanner, start=start, end=end):
            pass
    state.flush()  # the groups of a last line without its newline
    return state.result(scanner.line_base, stats.records, stats.skipped, stats.raw), state


def _work(conn: Connection, args: tuple[Any, ...]) -> None:
    """A forked worker: its range's result (None for a range that must be read in order: the
    reading process then meets any real error itself and reports it), then which of the pids
    it is asked about it saw connect. It leaves by `os._exit`, touching nothing it inherited
    (a progress bar's thread may have held the terminal's lock when it was forked)."""
    try:
        try:
            result, state = read_range(*args)
        except Exception:  # noqa: BLE001 - see above
            conn.send(None)
            return
        conn.send(result)
        pids = conn.recv()  # None: no question
        if pids is not None:
            conn.send(state.marked(pids))
    except (
        OSError,
        EOFError,
        KeyboardInterrupt,
    ):  # the reading process has gone or was interrupted
        pass
    finally:
        os._exit(0)


class Worker:
    """One range being read: by a forked process, or (`FORK` off) here when asked."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.spill = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; made before the fork: both processes hold it, no one names it
        self.args = (*args, self.spill)
        self.start, self.end = args[3], args[4]
        self.process: Any = None
        self.state: RangeState | None = None
        self.asked = False
        if FORK:
            self.conn, theirs = multiprocessing.Pipe()
            self.process = multiprocessing.get_context("fork").Process(
                target=_work, args=(theirs, self.args), daemon=True
            )
            self.process.start()
            theirs.close()

    def result(self) -> RangeResult | None:
        if self.process is None:
            try:
                result, self.state = read_range(*self.args)
            except ReadInOrder:
                return None
            return result
        try:
            return self.conn.recv()
        except EOFError:  # the worker died
            return None

    def marked(self, pids: set[Any]) -> set[Any]:
        if self.process is None:
            assert self.state is not None
            return self.state.marked(pids)
        self.asked = True
        self.conn.send(pids)
        return self.conn.recv()

    def close(self) -> None:
        self.spill.close()
        if self.process is not None:
            if not self.asked:
                with contextlib.suppress(OSError):
                    self.conn.send(None)  # the worker waits for a question until told there is none
            self.conn.close()
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


@contextlib.contextmanager
def started(
    path: Path,
    fmt: str,
    prefix: str,
    ranges: list[tuple[int, int | None]],
    tz: dt.tzinfo,
    group_seconds: int,
) -> Iterator[list[Worker]]:
    """Workers reading `ranges`, stopped on leaving (also on an error or an abandoned read)."""
    workers: list[Worker] = []
    try:
        for start, end in ranges:
            workers.append(Worker((path, fmt, prefix, start, end, tz, group_seconds)))
        yield workers
    finally:
        for worker in workers:
            worker.close()
