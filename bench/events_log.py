"""Benchmark: `pgslots events` on a >= 500 MB PostgreSQL stderr log, against pgBadger and grep.

Run by hand: `python bench/events_log.py [--size-mb 500] [--prefix PREFIX] [--keep DIR]`.

1. Starts a real PostgreSQL (the embedded wheel, or the system's), exhausts it from real
   psycopg clients under several roles (the same scenario as the acceptance tests), and
   takes its stderr log.
2. Builds a log of at least --size-mb by repeating that log, each copy's timestamps
   shifted past the previous copy's end.
3. Runs, on the same file in the same run: `pgslots events FILE --format json` (the CLI in a
   subprocess, as a user runs it), `pgbadger -j 1` with the right `--prefix` (checking it
   really parsed the lines: its error report must hold the connection errors), and
   `grep -c FATAL` as the practical ceiling. Prints MB/s, ratios and pgslots' peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from test_pglog_servers import exhaust, wait_for  # noqa: E402  (the acceptance scenario)

from pgslots.lab.postgres import TempPostgres, default_binaries  # noqa: E402

DEFAULT_PREFIX = "%m [%p] %q%u@%d "  # Debian's: no client, so pid correlation is exercised
_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


def real_log(prefix: str, rounds: int) -> bytes:
    """A real server's stderr log: `rounds` exhaustion scenarios, each on a fresh server."""
    logs = []
    for _ in range(rounds):
        settings = {"max_connections": 8, "superuser_reserved_connections": 2}
        binaries = default_binaries()
        if binaries.major >= 16:
            settings["reserved_connections"] = 1
        with TempPostgres(binaries, settings=settings, log_line_prefix=prefix) as server:
            seen, _held = exhaust(server)
            wait_for(server.logs.stderr, b"FATAL", sum(seen.values()))
            time.sleep(0.3)
            logs.append(server.logs.stderr.read_bytes())
    return b"".join(logs)


def build(log: bytes, target: int, path: Path) -> tuple[int, int]:
    """Repeat `log` with shifted timestamps until `target` bytes; returns (bytes, copies)."""
    stamps = [dt.datetime.strptime(m.decode(), "%Y-%m-%d %H:%M:%S") for m in _STAMP.findall(log)]
    span = max(stamps) - min(stamps) + dt.timedelta(seconds=1)
    written = copies = 0
    with path.open("wb") as out:
        while written < target:
            shift = span * copies
            cache: dict[bytes, bytes] = {}

            def moved(match: re.Match[bytes]) -> bytes:
                old = match.group(1)
                if old not in cache:
                    new = dt.datetime.strptime(old.decode(), "%Y-%m-%d %H:%M:%S") + shift
                    cache[old] = new.strftime("%Y-%m-%d %H:%M:%S").encode()
                return cache[old]

            chunk = _STAMP.sub(moved, log)
            out.write(chunk)
            written += len(chunk)
            copies += 1
    return written, copies


def run_measured(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str], int]:
    """Run `cmd` and return (wall seconds, result, peak RSS KiB of that child alone)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, result, after if after > before else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--rounds", type=int, default=3, help="exhaustion scenarios in the seed log")
    parser.add_argument("--keep", type=Path, help="build the big log in this directory and keep it")
    args = parser.parse_args()
    pgbadger = shutil.which("pgbadger")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pgslots-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "big.log"
    try:
        seed = real_log(args.prefix, args.rounds)
        size, copies = build(seed, args.size_mb * 1_000_000, path)
        mb = size / 1e6
        fatal_lines = seed.count(b"FATAL:  ") * copies
        print(f"log: {mb:.0f} MB, {copies} copies of a real {len(seed) / 1e3:.0f} kB PostgreSQL "
              f"{default_binaries().version} log, prefix {args.prefix!r}, {fatal_lines} FATAL lines")

        # Rusage of children only grows, so measure pgslots first: its peak is then its own.
        wall, result, rss_kib = run_measured([sys.executable, "-m", "pgslots", "events", str(path), "--format", "json"])
        if result.returncode != 0:
            print(result.stderr)
            return 1
        report = json.loads(result.stdout)
        total = report["total"]
        pgslots_rate = mb / wall
        print(f"pgslots events --format json: {wall:7.2f} s  {pgslots_rate:8.1f} MB/s  peak RSS {rss_kib / 1024:.0f} MB  "
              f"({total} events, {report['inputs'][0]['skipped']} lines skipped)")
        if total != fatal_lines:
            print(f"  MISMATCH: pgslots counted {total} FATAL events, the file has {fatal_lines}")

        grep_wall, grep, _ = run_measured(["grep", "-c", "FATAL", str(path)])
        grep_wall = min(grep_wall, run_measured(["grep", "-c", "FATAL", str(path)])[0])
        grep_rate = mb / grep_wall
        print(f"grep -c FATAL:                {grep_wall:7.2f} s  {grep_rate:8.1f} MB/s  ({grep.stdout.strip()} lines)")

        if pgbadger:
            out = workdir / "pgbadger.json"
            badger_wall, badger, _ = run_measured(
                [pgbadger, "-j", "1", "--prefix", args.prefix, "-f", "stderr", "-o", str(out), "-q", str(path)]
            )
            errors = 0
            if out.exists():
                data = json.loads(out.read_text())
                for info in data.get("error_info", {}).values():
                    errors += sum(int(v.get("count", 0)) for v in info.values() if isinstance(v, dict))
            badger_rate = mb / badger_wall
            print(f"pgbadger -j 1:                {badger_wall:7.2f} s  {badger_rate:8.1f} MB/s  "
                  f"(its error report holds {errors} errors{'; pgbadger parsed NOTHING' if not errors else ''})")
            print(f"ratio pgslots / pgbadger:     {pgslots_rate / badger_rate:7.1f}x   (target >= 20x)")
        else:
            print("pgbadger not installed (apt-get install pgbadger): no ratio")
        print(f"ratio pgslots / grep:         {pgslots_rate / grep_rate:7.3f}    (target >= 0.1)")
        print(f"peak RSS:                     {rss_kib / 1024:7.0f} MB   (target < 150 MB)")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
