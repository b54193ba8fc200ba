"""Benchmark: `pgslots events` on a >= 500 MB PostgreSQL stderr log, against pgBadger and grep.

Run by hand: `python bench/events_log.py [--size-mb 500] [--prefix PREFIX ...] [--keep DIR]
[--no-formats]`.

1. Starts a real PostgreSQL (the embedded wheel, or the system's), exhausts it from real
   psycopg clients under several roles (the same scenario as the acceptance tests), and
   takes its stderr, csvlog and jsonlog logs.
2. Builds a log of at least --size-mb by repeating the stderr log, each copy's timestamps
   shifted past the previous copy's end (pids repeat, as on a server whose pids wrap).
3. Runs, on the same file in the same run: `pgslots events FILE --format json` (the CLI in a
   subprocess, as a user runs it), `pgbadger -j 1` with the right `--prefix` (checking it
   really parsed the lines: its error report must hold the connection errors), and
   `grep -c FATAL` as the practical ceiling. Prints MB/s, ratios and pgslots' peak RSS.
   Each --prefix (default: Debian's, which lacks the client, and the upstream default,
   which lacks user and database too) gets its own server, log and figures.
4. Unless --no-formats: the same for the gzipped stderr log, and for csvlog and jsonlog logs
   built the same way (pgslots only; the targets are for stderr).
"""

from __future__ import annotations

import argparse
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

from test_pglog_servers import exhaust, wait_for  # noqa: E402  (the acceptance scenario)

from pgslots.lab.postgres import TempPostgres, default_binaries  # noqa: E402

PREFIXES = ("%m [%p] %q%u@%d ", "%m [%p] ")  # Debian's (no client), upstream default (no user/db either)
_STAMP = re.compile(rb'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)|"timestamp":"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', re.M)


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
            for kind, path in (("stderr", server.logs.stderr), ("csvlog", server.logs.csvlog), ("jsonlog", server.logs.jsonlog)):
                if binaries.major >= 15 or kind != "jsonlog":
                    wait_for(path, b"FATAL", sum(seen.values()))
            time.sleep(0.3)
            for kind, path in (("stderr", server.logs.stderr), ("csvlog", server.logs.csvlog), ("jsonlog", server.logs.jsonlog)):
                if path.exists():
                    logs[kind].append(path.read_bytes())
    return {kind: b"".join(parts) for kind, parts in logs.items() if parts}


def build(log: bytes, target: int, path: Path) -> tuple[int, int]:
    """Repeat `log` with shifted timestamps until `target` bytes; returns (bytes, copies)."""
    stamps = [dt.datetime.strptime((a or b).decode(), "%Y-%m-%d %H:%M:%S") for a, b in _STAMP.findall(log)]
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


def run_measured(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str], int]:
    """Run `cmd` and return (wall seconds, result, peak RSS KiB of that process alone).

    The RSS is read by GNU time around the command: a child's own rusage would also count
    this (larger) process's pages, which Linux charges to a child started by vfork."""
    timer = shutil.which("time") or "/usr/bin/time"
    with tempfile.NamedTemporaryFile() as rss:
        measured = [timer, "-q", "-f", "%M", "-o", rss.name, *cmd] if os.path.exists(timer) else cmd
        start = time.perf_counter()
        result = subprocess.run(measured, capture_output=True, text=True)
        wall = time.perf_counter() - start
        text = Path(rss.name).read_text().strip()
    return wall, result, int(text.splitlines()[-1]) if text[-1:].isdigit() else -1


def run_pgslots(path: Path, mb: float, expected: int, label: str) -> tuple[float, float] | None:
    """`pgslots events PATH --format json` in a subprocess; prints and returns its MB/s and
    peak RSS (MB)."""
    wall, result, rss_kib = run_measured([sys.executable, "-m", "pgslots", "events", str(path), "--format", "json"])
    if result.returncode != 0:
        print(result.stderr)
        return None
    report = json.loads(result.stdout)
    rate = mb / wall
    print(f"{label:30}{wall:7.2f} s  {rate:8.1f} MB/s  peak RSS {rss_kib / 1024:.0f} MB  "
          f"({report['total']} events, {report['inputs'][0]['skipped']} lines skipped)")
    if report["total"] != expected:
        print(f"  MISMATCH: pgslots counted {report['total']} FATAL events, the file has {expected}")
    return rate, rss_kib / 1024


def bench_prefix(prefix: str, args: argparse.Namespace, workdir: Path, pgbadger: str | None) -> None:
    logs = real_logs(prefix, args.rounds)
    seed = logs["stderr"]
    path = workdir / "big.log"
    size, copies = build(seed, args.size_mb * 1_000_000, path)
    mb = size / 1e6
    fatal_lines = seed.count(b"FATAL:  ") * copies
    lines = seed.count(b"\n") * copies
    print(f"\nlog: {mb:.0f} MB, {copies} copies of a real {len(seed) / 1e3:.0f} kB PostgreSQL "
          f"{default_binaries().version} log, prefix {prefix!r}, {lines} lines, {fatal_lines} FATAL lines")
    measured = run_pgslots(path, mb, fatal_lines, "pgslots events --format json:")
    if measured is None:
        return
    pgslots_rate, rss = measured

    grep_wall, grep, _ = run_measured(["grep", "-c", "FATAL", str(path)])
    grep_wall = min(grep_wall, run_measured(["grep", "-c", "FATAL", str(path)])[0])
    grep_rate = mb / grep_wall
    print(f"{'grep -c FATAL:':30}{grep_wall:7.2f} s  {grep_rate:8.1f} MB/s  ({grep.stdout.strip()} lines)")

    if pgbadger:
        out = workdir / "pgbadger.json"
        badger_wall, _badger, _ = run_measured(
            [pgbadger, "-j", "1", "--prefix", prefix, "-f", "stderr", "-o", str(out), "-q", str(path)]
        )
        errors = 0
        if out.exists():
            data = json.loads(out.read_text())
            for info in data.get("error_info", {}).values():
                errors += sum(int(v.get("count", 0)) for v in info.values() if isinstance(v, dict))
        badger_rate = mb / badger_wall
        print(f"{'pgbadger -j 1:':30}{badger_wall:7.2f} s  {badger_rate:8.1f} MB/s  "
              f"(its error report holds {errors} errors{'; pgbadger parsed NOTHING' if not errors else ''})")
        print(f"{'ratio pgslots / pgbadger:':30}{pgslots_rate / badger_rate:7.1f}x   (target >= 20x)")
    else:
        print("pgbadger not installed (apt-get install pgbadger): no ratio")
    print(f"{'ratio pgslots / grep:':30}{pgslots_rate / grep_rate:7.3f}    (target >= 0.1)")
    print(f"{'peak RSS (pgslots):':30}{rss:7.0f} MB   (target < 150 MB)")

    if args.no_formats:
        return
    gz = workdir / "big.log.gz"
    with path.open("rb") as raw, gzip.open(gz, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(raw, packed, 16 << 20)
    path.unlink()
    run_pgslots(gz, mb, fatal_lines, f"same, gzipped ({gz.stat().st_size / 1e6:.0f} MB):")
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
    parser.add_argument("--prefix", action="append", help="log_line_prefix (repeatable; default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="exhaustion scenarios in the seed log")
    parser.add_argument("--keep", type=Path, help="build the big logs in this directory and keep it")
    parser.add_argument("--no-formats", action="store_true", help="stderr only: no .gz, csvlog, jsonlog figures")
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
