"""Benchmark: `pgslots events` on a >= 200 MB application log of tracebacks, against grep.

Run by hand: `python bench/applog.py [--size-mb 200] [--fixture NAME] [--repeat N] [--keep DIR]`.

1. Builds a log of at least --size-mb by repeating one file of the application-log corpus
   (default `compose-django-verbose.log`: gunicorn with Django's "verbose" format and a
   Celery worker, interleaved by `docker compose logs`, made by real processes failing
   against a full PostgreSQL; see tests/fixtures/make_applog_corpus.py), each copy's times
   shifted past the previous copy's end.
2. Runs, on the same file in the same run: `pgslots events FILE --format json` (the CLI in
   a subprocess, as a user runs it) --repeat times, checking it counts every failure of
   every copy; and `grep -c OperationalError FILE` (the practical ceiling: one pass, no
   records). Prints MB/s, the ratio, and pgslots' peak RSS (target < 150 MB), each line with
   the machine's load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "fixtures" / "applog" / "corpus"
sys.path.insert(0, str(HERE))

from events_log import load, run_measured  # noqa: E402  (the same measuring as the server-log bench)

_STAMP = re.compile(rb"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)")


def build(seed: bytes, target: int, path: Path) -> tuple[int, int]:
    """Repeat `seed` with every time shifted past the previous copy's end until `target`
    bytes; returns (bytes, copies)."""
    stamps = [
        dt.datetime.fromisoformat(f"{d.decode()} {t.decode()}") for d, t in _STAMP.findall(seed)
    ]
    span = max(stamps) - min(stamps) + dt.timedelta(seconds=1)
    written = copies = 0
    with path.open("wb") as out:
        while written < target:
            shift = span * copies
            cache: dict[bytes, bytes] = {}

            def moved(match: re.Match[bytes]) -> bytes:
                old = match.group(0)
                if old not in cache:
                    when = (
                        dt.datetime.fromisoformat(
                            f"{match.group(1).decode()} {match.group(2).decode()}"
                        )
                        + shift
                    )
                    sep = old[10:11].decode()
                    cache[old] = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S").encode()
                return cache[old]

            chunk = _STAMP.sub(moved, seed)
            out.write(chunk)
            written += len(chunk)
            copies += 1
    return written, copies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument(
        "--fixture", default="compose-django-verbose.log", help="a file of the corpus"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of pgslots (the fastest is compared)"
    )
    parser.add_argument("--keep", type=Path, help="build the log in this directory and keep it")
    args = parser.parse_args()
    seed_path = CORPUS / args.fixture
    seed = seed_path.read_bytes()
    seed_report = json.loads(
        run_measured(
            [sys.executable, "-m", "pgslots", "events", str(seed_path), "--format", "json"]
        ).result.stdout
    )
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pgslots-bench-applog-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        path = workdir / "app.log"
        size, copies = build(seed, args.size_mb * 1_000_000, path)
        mb = size / 1e6
        expected = seed_report["total"] * copies
        lines = seed.count(b"\n") * copies
        print(
            f"log: {mb:.0f} MB, {copies} copies of {args.fixture} ({len(seed) / 1e3:.0f} kB, "
            f"{seed_report['total']} failures each), {lines} lines, {expected} failures"
        )
        best = None
        for _ in range(args.repeat):
            measured = run_measured(
                [sys.executable, "-m", "pgslots", "events", str(path), "--format", "json"]
            )
            if measured.result.returncode != 0:
                print(measured.result.stderr)
                return 1
            report = json.loads(measured.result.stdout)
            print(
                f"{'pgslots events:':26}{measured.wall:7.2f} s  {mb / measured.wall:7.1f} MB/s  "
                f"{measured.rss_text()}  ({report['total']} events; {load()})"
            )
            if report["total"] != expected:
                print(
                    f"  MISMATCH: pgslots counted {report['total']} failures, the file has {expected}"
                )
            if best is None or measured.wall < best.wall:
                best = measured
        grep = min(
            (run_measured(["grep", "-c", "OperationalError", str(path)]) for _ in range(2)),
            key=lambda m: m.wall,
        )
        print(
            f"{'grep -c OperationalError:':26}{grep.wall:7.2f} s  {mb / grep.wall:7.1f} MB/s  "
            f"({grep.result.stdout.strip()} lines; {load()})"
        )
        assert best is not None
        print(f"{'ratio pgslots / grep:':26}{grep.wall / best.wall:7.3f}")
        print(f"{'peak RSS (pgslots):':26}{best.rss_text()}   (target < 150 MB)")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
