"""Wall time and peak memory of `pgslots demo` (run by hand: `python bench/demo.py`).

The demo starts many processes (PostgreSQL and its backends, gunicorn and its workers, a
Celery worker and its children, pgbouncer), so "peak memory" is the peak of the whole
process tree's resident memory (sum of RSS, sampled every 0.2 s from /proc), next to the
peak RSS of the largest single process and of the `pgslots` process itself. There is no
peer tool that reproduces an incident, so the figures are absolute; the budget is the
issue's: under 3 minutes on the 2-core lab machine.

Usage: python bench/demo.py [--out DIR] [extra demo arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
BUDGET_SECONDS = 180


def tree_rss(root: int) -> tuple[int, int]:
    """(sum of RSS, largest RSS) in bytes over `root` and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
        parents[pid] = int(stat[1])
        rss[pid] = resident
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in family]
        family.update(children)
        frontier.extend(children)
    sizes = [rss[pid] for pid in family if pid in rss]
    return sum(sizes), max(sizes, default=0)


def main() -> int:
    argv = [sys.executable, "-m", "pgslots", "demo", *sys.argv[1:]]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_total = peak_single = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_total, peak_single
        while not done.is_set():
            total, single = tree_rss(process.pid)
            peak_total, peak_single = max(peak_total, total), max(peak_single, single)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        print(out)
        print(f"demo failed with exit code {process.returncode}")
        return 1
    mib = 1024 * 1024
    print(
        f"pgslots demo: wall time {wall:.1f} s (budget {BUDGET_SECONDS} s, {wall / BUDGET_SECONDS:.0%} of it)"
    )
    print(f"peak memory of the whole process tree: {peak_total / mib:.0f} MiB (sum of RSS)")
    print(f"largest single process: {peak_single / mib:.0f} MiB RSS")
    fixed = next((line for line in out.splitlines() if line.startswith("Fixed by:")), "")
    print(fixed)
    return 0 if wall < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
