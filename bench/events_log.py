"""Benchmark: `pgslots events` on a >= 500 MB PostgreSQL stderr log, against pgBadger and grep.

Run by hand: `python bench/events_log.py [--size-mb 500] [--prefix PREFIX ...] [--repeat N]
[--keep DIR] [--no-formats]`.

1. Starts a real PostgreSQL (the embedded wheel, or the system's), exhausts it from real
   psycopg clients under several roles (the same scenario as the acceptance tests), and
   takes its stderr, csvlog and jsonlog logs.
2. Builds a log of at least --size-mb by repeating the stderr log, each copy's timestamps
   shifted past the previous copy's end (pids repeat, as on a server whose pids wrap).
3. Runs, on the same file in the same run: `pgslots events FILE --format json` (the CLI in a
   subprocess, as a user runs it) both as it runs by default (one process per CPU for a
   file this large) and with `--jobs 1` (one process), each --repeat times (the fastest
   run of each is compared); `pgbadger -j 1` with the right `--prefix` (checking it really
   parsed the lines: its error report must hold the connection errors); and `grep -c FATAL`
   as the practical ceiling. Prints MB/s, the ratios, and pgslots' peak RSS: per process of
   its tree (the reading process and its forked workers, sampled from /proc every 5 ms;
   the first also read by GNU time), their sum, and the highest sum seen at one moment.
   Every line ends with the machine's load average: the machine is shared, so a figure
   taken under load says so.
   Each --prefix (default: Debian's, which lacks the client, and the upstream default,
   which lacks user and database too) gets its own server, log and figures.
4. Unless --no-formats: pgslots alone on the same log gzipped (read in one process: a
   deflate stream cannot be entered in the middle), and on csvlog and jsonlog logs built
   the same way (the targets are for stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pgslots.events.pglog.workers import default_jobs  # noqa: E402
from pgslots.lab.postgres import TempPostgres, default_binaries  # noqa: E402
from test_pglog_servers import exhaust, wait_for  # noqa: E402  (the acceptance scenario)

PREFIXES = (
    "%m [%p] %q%u@%d ",
    "%m [%p] ",
)  # Debian's (no client), upstream default (no user/db either)
_STAMP = re.compile(
    rb'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)|"timestamp":"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', re.M
)


def real_logs(prefix: str, rounds: int) -> dict[str, bytes]:
    """A real server's stderr, csvlog and jsonlog logs: `rounds` exhaustion scenarios, each
    on a fresh server."""
    logs: dict[str, list[bytes]] = {"stderr": [], "csvlog": [], "jsonlog": []}
    for _ in range(rounds):
        settings = {"max_connections": 8, "superuser_reserved_connections": 2}
        binaries = default_binaries()
        if binaries.major >= 16:
            settings["reserved_connections"] = 1
        with TempPostgres(binaries, settings=settings, log_line_prefix=prefix) as server:
            seen, _held = exhaust(server)
            for kind, path in (
                ("stderr", server.logs.stderr),
                ("csvlog", server.logs.csvlog),
                ("jsonlog", server.logs.jsonlog),
            ):
                if binaries.major >= 15 or kind != "jsonlog":
                    wait_for(path, b"FATAL", sum(seen.values()))
            time.sleep(0.3)
            for kind, path in (
                ("stderr", server.logs.stderr),
                ("csvlog", server.logs.csvlog),
                ("jsonlog", server.logs.jsonlog),
            ):
                if path.exists():
                    logs[kind].append(path.read_bytes())
    return {kind: b"".join(parts) for kind, parts in logs.items() if parts}


def build(log: bytes, target: int, path: Path) -> tuple[int, int]:
    """Repeat `log` with shifted timestamps until `target` bytes; returns (bytes, copies)."""
    stamps = [
        dt.datetime.strptime((a or b).decode(), "%Y-%m-%d %H:%M:%S") for a, b in _STAMP.findall(log)
    ]
    span = max(stamps) - min(stamps) + dt.timedelta(seconds=1)
    written = copies = 0
    with path.open("wb") as out:
        while written < target:
            shift = span * copies
            cache: dict[bytes, bytes] = {}

            def moved(match: re.Match[bytes]) -> bytes:
                old = match.group(1) or match.group(2)
                if old not in cache:
                    new = dt.datetime.strptime(old.decode(), "%Y-%m-%d %H:%M:%S") + shift
                    cache[old] = new.strftime("%Y-%m-%d %H:%M:%S").encode()
                return match.group(0).replace(old, cache[old])

            chunk = _STAMP.sub(moved, log)
            out.write(chunk)
            written += len(chunk)
            copies += 1
    return written, copies


def tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return found


def memory(pid: int) -> tuple[int, int]:
    """(current, peak) RSS in KiB of one process (VmRSS, VmHWM), or (0, 0) once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("VmHWM", "0 kB").split()[0])


@dataclasses.dataclass
class Measured:
    wall: float
    result: subprocess.CompletedProcess[str]
    peaks_kib: dict[int, int]  # per process of the tree: its peak RSS (VmHWM, last seen)
    sum_kib: int  # the highest sum of the tree's RSS seen at one moment

    def rss_text(self) -> str:
        peaks = sorted(self.peaks_kib.values(), reverse=True)
        each = " + ".join(f"{kib / 1024:.0f}" for kib in peaks)
        return f"peak RSS {each} MB" + (
            f" = {sum(peaks) / 1024:.0f} MB summed over {len(peaks)} processes "
            f"(together at most {self.sum_kib / 1024:.0f} MB at once)"
            if len(peaks) > 1
            else ""
        )


def run_measured(cmd: list[str]) -> Measured:
    """Run `cmd`, sampling its process tree's memory every few ms: each process's peak RSS
    (VmHWM, which the kernel keeps, read until the process ends) and the peak of their sum.
    The command's own peak is also read by GNU time around it, which nothing can miss (its
    own rusage would not do: Linux charges a child the pages of the process that forked it,
    here this larger one, until it execs)."""
    timer = shutil.which("time") or "/usr/bin/time"
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile() as rss,
    ):
        wrapped = [timer, "-q", "-f", "%M", "-o", rss.name, *cmd] if os.path.exists(timer) else cmd
        start = time.perf_counter()
        process = subprocess.Popen(wrapped, stdout=out, stderr=err, text=True)
        peaks: dict[int, int] = {}
        top, root = 0, None
        while process.poll() is None:
            now = 0
            pids = tree(process.pid)[1 if wrapped is not cmd else 0 :]  # not GNU time itself
            root = root or (pids[0] if pids else None)
            for pid in pids:
                current, peak = memory(pid)
                now += current
                if peak:
                    peaks[pid] = max(peaks.get(pid, 0), peak)
            top = max(top, now)
            time.sleep(0.005)
        wall = time.perf_counter() - start
        text = Path(rss.name).read_text().strip()
        if text[-1:].isdigit() and root is not None:
            peaks[root] = max(peaks.get(root, 0), int(text.splitlines()[-1]))
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, process.returncode, out.read(), err.read())
    return Measured(wall, result, peaks, top)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def run_pgslots(
    path: Path, mb: float, expected: int, label: str, jobs: int | None = None
) -> tuple[float, Measured] | None:
    """`pgslots events PATH --format json` in a subprocess, as a user runs it; prints and
    returns its MB/s and measures."""
    cmd = [sys.executable, "-m", "pgslots", "events", str(path), "--format", "json"]
    measured = run_measured(cmd + ([f"--jobs={jobs}"] if jobs else []))
    if measured.result.returncode != 0:
        print(measured.result.stderr)
        return None
    report = json.loads(measured.result.stdout)
    rate = mb / measured.wall
    print(
        f"{label:34}{measured.wall:7.2f} s  {rate:8.1f} MB/s  {measured.rss_text()}  "
        f"({report['total']} events, {report['inputs'][0]['skipped']} lines skipped; {load()})"
    )
    if report["total"] != expected:
        print(
            f"  MISMATCH: pgslots counted {report['total']} FATAL events, the file has {expected}"
        )
    return rate, measured


def bench_prefix(
    prefix: str, args: argparse.Namespace, workdir: Path, pgbadger: str | None
) -> None:
    logs = real_logs(prefix, args.rounds)
    seed = logs["stderr"]
    path = workdir / "big.log"
    size, copies = build(seed, args.size_mb * 1_000_000, path)
    mb = size / 1e6
    fatal_lines = seed.count(b"FATAL:  ") * copies
    lines = seed.count(b"\n") * copies
    print(
        f"\nlog: {mb:.0f} MB, {copies} copies of a real {len(seed) / 1e3:.0f} kB PostgreSQL "
        f"{default_binaries().version} log, prefix {prefix!r}, {lines} lines, {fatal_lines} FATAL lines"
    )
    runs = {}
    for _ in range(args.repeat):
        for jobs, label in (
            (None, f"pgslots events (--jobs {default_jobs()}):"),
            (1, "pgslots events --jobs 1:"),
        ):
            measured = run_pgslots(path, mb, fatal_lines, label, jobs)
            if measured is None:
                return
            runs.setdefault(jobs, []).append(measured)
    (parallel_rate, parallel), (single_rate, single) = (
        max(runs[jobs], key=lambda r: r[0]) for jobs in (None, 1)
    )

    grep_wall = min(run_measured(["grep", "-c", "FATAL", str(path)]).wall for _ in range(2))
    grep_rate = mb / grep_wall
    grep = run_measured(["grep", "-c", "FATAL", str(path)])
    print(
        f"{'grep -c FATAL:':34}{grep_wall:7.2f} s  {grep_rate:8.1f} MB/s  ({grep.result.stdout.strip()} lines; {load()})"
    )

    if pgbadger:
        out = workdir / "pgbadger.json"
        badger = run_measured(
            [
                pgbadger,
                "-j",
                "1",
                "--prefix",
                prefix,
                "-f",
                "stderr",
                "-o",
                str(out),
                "-q",
                str(path),
            ]
        )
        errors = 0
        if out.exists():
            data = json.loads(out.read_text())
            for info in data.get("error_info", {}).values():
                errors += sum(int(v.get("count", 0)) for v in info.values() if isinstance(v, dict))
        badger_rate = mb / badger.wall
        print(
            f"{'pgbadger -j 1:':34}{badger.wall:7.2f} s  {badger_rate:8.1f} MB/s  "
            f"(its error report holds {errors} errors{'; pgbadger parsed NOTHING' if not errors else ''}; {load()})"
        )
        for name, rate in (("", parallel_rate), (" --jobs 1", single_rate)):
            print(
                f"{'ratio pgslots' + name + ' / pgbadger:':34}{rate / badger_rate:7.1f}x   (target >= 20x)"
            )
    else:
        print("pgbadger not installed (apt-get install pgbadger): no ratio")
    for name, rate in (("", parallel_rate), (" --jobs 1", single_rate)):
        print(f"{'ratio pgslots' + name + ' / grep:':34}{rate / grep_rate:7.3f}    (target >= 0.1)")
    print(
        f"{'peak RSS (pgslots):':34}{parallel.rss_text()}; --jobs 1: {single.rss_text()}   (target < 150 MB)"
    )

    if args.no_formats:
        return
    gz = workdir / "big.log.gz"
    with path.open("rb") as raw, gzip.open(gz, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(raw, packed, 16 << 20)
    path.unlink()
    run_pgslots(
        gz, mb, fatal_lines, f"same, gzipped ({gz.stat().st_size / 1e6:.0f} MB):"
    )  # one process
    gz.unlink()
    for kind in ("csvlog", "jsonlog"):
        if kind not in logs:
            continue
        other = workdir / f"big.{kind}"
        size, copies = build(logs[kind], args.size_mb * 1_000_000, other)
        expected = logs[kind].count(b"FATAL") * copies
        run_pgslots(other, size / 1e6, expected, f"{kind} ({size / 1e6:.0f} MB):")
        other.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument(
        "--prefix", action="append", help="log_line_prefix (repeatable; default: %(default)s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="exhaustion scenarios in the seed log"
    )
    parser.add_argument(
        "--keep", type=Path, help="build the big logs in this directory and keep it"
    )
    parser.add_argument(
        "--no-formats", action="store_true", help="stderr only: no .gz, csvlog, jsonlog figures"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of pgslots per mode (the fastest is compared)"
    )
    args = parser.parse_args()
    pgbadger = shutil.which("pgbadger")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pgslots-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for prefix in args.prefix or PREFIXES:
            bench_prefix(prefix, args, workdir, pgbadger)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
