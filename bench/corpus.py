"""Score `pgslots audit` against hand-worked figures for real public repositories.

Each `bench/corpus/<owner>__<name>.yaml` pins a repository at a commit and holds the connection
budget worked out by hand from that repository's own files before pgslots was run on it (format:
`bench/corpus/README.md`). This script audits every pinned checkout it finds under DIR (a folder
`DIR/<owner>__<name>` at the pinned commit), one `pgslots audit --format json` process per
repository, and prints one row per repository:

- `match`: the same groups, each with the same steady and worst demand, and the same totals;
- `mismatch`: what differs, group by group;
- `SILENT ZERO`: pgslots reports a worst case of 0 where the repository opens connections;
- `INVALID JSON`, `error` (exit 2 or a crash), `missing` (no checkout), `wrong commit`.

Then the score (targets: >= 90 % exact, 100 % without a silent zero, 100 % valid JSON) and the
cost of each audit (wall time with Python start-up, peak RSS of the process; targets < 1 s and
< 60 MB).

    python bench/corpus.py DIR [--only owner__name ...] [--json results.json]

To make the checkouts: `git clone https://github.com/<owner>/<name> DIR/<owner>__<name>` and
`git -C DIR/<owner>__<name> checkout <commit>` for each file (`--print-clone` prints them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "corpus"

Worst = int | str  # a number of connections, "unbounded" or "unknown"
Demand = tuple[Any, Worst]  # (steady, worst)


@dataclass
class Case:
    """One pinned repository and its hand-worked budget."""

    key: str
    repo: str
    commit: str
    project: str
    groups: dict[str, Demand]
    total: Demand

    @classmethod
    def load(cls, path: Path) -> Case:
        data = yaml.safe_load(path.read_text())
        expected = data["expected"]
        groups = {
            name: (g.get("steady"), g.get("worst"))
            for name, g in (expected.get("groups") or {}).items()
        }
        total = expected["total"]
        return cls(
            key=path.stem,
            repo=data["repo"],
            commit=str(data["commit"]),
            project=data.get("project") or "",
            groups=_without_idle(groups),
            total=(total.get("steady"), total.get("worst")),
        )


@dataclass
class Outcome:
    """What one audit gave, and how it compares."""

    case: Case
    verdict: str
    differences: list[str] = field(default_factory=list)
    seconds: float | None = None
    peak_rss_mb: float | None = None
    got_total: Demand | None = None


def _without_idle(groups: dict[str, Demand]) -> dict[str, Demand]:
    """Groups that can hold no connection (flower: 0/0) are left out on both sides."""
    return {name: d for name, d in groups.items() if d != (0, 0)}


def _worst_of(demand: dict[str, Any]) -> Worst:
    bound = demand.get("bound")
    if bound in ("unbounded", "unknown"):
        return bound
    worst = demand.get("worst")
    if worst is None:  # before the explicit bound existed, null meant unbounded
        return "unbounded"
    return int(worst)


def _steady_of(demand: dict[str, Any]) -> Any:
    steady = demand.get("steady")
    return "unknown" if steady is None else steady


def budget_of(document: dict[str, Any]) -> tuple[dict[str, Demand], Demand]:
    """The groups' and the total's (steady, worst) from `audit --format json`."""
    topology = document["topology"]
    groups = {
        g["name"]: (_steady_of(g["demand"]), _worst_of(g["demand"])) for g in topology["groups"]
    }
    return _without_idle(groups), (_steady_of(topology["demand"]), _worst_of(topology["demand"]))


def compare(case: Case, groups: dict[str, Demand], total: Demand) -> list[str]:
    differences = []
    for name in sorted(set(case.groups) | set(groups)):
        want, got = case.groups.get(name), groups.get(name)
        if want is None:
            differences.append(f"{name}: not expected, pgslots {got[0]}/{got[1]}")
        elif got is None:
            differences.append(f"{name}: expected {want[0]}/{want[1]}, pgslots has no such group")
        elif want != got:
            differences.append(f"{name}: expected {want[0]}/{want[1]}, pgslots {got[0]}/{got[1]}")
    if total != case.total:
        differences.append(
            f"total: expected {case.total[0]}/{case.total[1]}, pgslots {total[0]}/{total[1]}"
        )
    return differences


def run_audit(target: Path) -> tuple[int, str, str, float, float]:
    """Run the CLI in its own process: exit code, stdout, stderr, seconds, peak RSS in MB.

    The output goes to temporary files so that the process can be reaped with wait4, whose
    rusage is that process's own (getrusage(RUSAGE_CHILDREN) would keep the largest child so
    far).
    """
    command = [sys.executable, "-m", "pgslots", "audit", str(target), "--format", "json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return process.returncode, stdout, stderr, seconds, usage.ru_maxrss / 1024


def head_commit(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip()


def score_one(case: Case, base: Path) -> Outcome:
    checkout = base / case.key
    if not checkout.is_dir():
        return Outcome(case, "missing")
    if head_commit(checkout) != case.commit:
        return Outcome(case, "wrong commit", [f"checkout at {head_commit(checkout)[:12]}"])
    target = checkout / case.project if case.project else checkout
    code, stdout, stderr, seconds, rss = run_audit(target)
    if code not in (0, 1, 3):
        last = (stderr.strip().splitlines() or ["(no message)"])[-1]
        return Outcome(case, "error", [f"exit {code}: {last}"], seconds, rss)
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as error:
        return Outcome(case, "INVALID JSON", [str(error)], seconds, rss)
    groups, total = budget_of(document)
    differences = compare(case, groups, total)
    if total[1] == 0 and case.total[1] != 0:
        verdict = "SILENT ZERO"
    else:
        verdict = "mismatch" if differences else "match"
    return Outcome(case, verdict, differences, seconds, rss, total)


def print_table(outcomes: list[Outcome]) -> None:
    width = max((len(o.case.repo) for o in outcomes), default=10)
    print(
        f"{'repository':<{width}}  {'expected':<16}  {'pgslots':<16}  {'s':>5}  {'MB':>5}  verdict"
    )
    for o in outcomes:
        want = f"{o.case.total[0]}/{o.case.total[1]}"
        got = f"{o.got_total[0]}/{o.got_total[1]}" if o.got_total else "-"
        seconds = f"{o.seconds:.2f}" if o.seconds is not None else "-"
        rss = f"{o.peak_rss_mb:.0f}" if o.peak_rss_mb is not None else "-"
        print(f"{o.case.repo:<{width}}  {want:<16}  {got:<16}  {seconds:>5}  {rss:>5}  {o.verdict}")
        for difference in o.differences:
            print(f"{'':<{width}}    - {difference}")


def print_score(outcomes: list[Outcome]) -> None:
    ran = [o for o in outcomes if o.verdict not in ("missing", "wrong commit")]
    if not ran:
        print("\nno checkout found: nothing scored")
        return
    exact = sum(o.verdict == "match" for o in ran)
    zero = sum(o.verdict == "SILENT ZERO" for o in ran)
    invalid = sum(o.verdict == "INVALID JSON" for o in ran)
    n = len(ran)
    print(
        f"\nscore: {exact}/{n} exact ({100 * exact / n:.0f} %), "
        f"{n - zero}/{n} without a silent zero ({100 * (n - zero) / n:.0f} %), "
        f"{n - invalid}/{n} valid JSON ({100 * (n - invalid) / n:.0f} %)"
    )
    timed = [o.seconds for o in ran if o.seconds is not None]
    sized = [o.peak_rss_mb for o in ran if o.peak_rss_mb is not None]
    if timed:
        print(f"audit wall time with start-up: max {max(timed):.2f} s")
    if sized:
        print(f"audit peak RSS: max {max(sized):.0f} MB")
    skipped = len(outcomes) - n
    if skipped:
        print(f"not scored: {skipped} (no checkout or another commit)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dir", type=Path, nargs="?", help="folder holding <owner>__<name> checkouts"
    )
    parser.add_argument("--only", action="append", default=[], help="owner__name (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--print-clone", action="store_true", help="print the git commands")
    args = parser.parse_args()
    cases = [Case.load(p) for p in sorted(CORPUS.glob("*.yaml"))]
    if args.only:
        cases = [c for c in cases if c.key in args.only]
    if args.print_clone:
        for c in cases:
            where = f"{args.dir or 'DIR'}/{c.key}"
            print(
                f"git clone -q https://github.com/{c.repo} {where} && git -C {where} checkout -q {c.commit}"
            )
        return 0
    if args.dir is None:
        parser.error("DIR is required")
    env_src = str(ROOT / "src")
    if env_src not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [env_src, os.environ.get("PYTHONPATH")])
        )
    outcomes = [score_one(c, args.dir) for c in cases]
    print_table(outcomes)
    print_score(outcomes)
    if args.json:
        rows = [
            {
                "repo": o.case.repo,
                "verdict": o.verdict,
                "differences": o.differences,
                "seconds": o.seconds,
                "peak_rss_mb": o.peak_rss_mb,
            }
            for o in outcomes
        ]
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
