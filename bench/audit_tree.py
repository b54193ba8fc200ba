"""Benchmark: `pgslots audit` on a generated tree of >= 10,000 files with a real project inside.

The tree is mostly what real repositories carry besides their deployment files: application
modules, templates, static assets, migrations, tests, docs, a `node_modules` and a virtualenv
(both skipped by the walker). The project in the middle is the write-up-shaped fixture.
Prints wall time (best of N), peak RSS, and files walked per second. Target: < 2 s.

    python bench/audit_tree.py [--files 12000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "repos" / "writeup"


def make_tree(root: Path, files: int) -> int:
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    written = sum(1 for p in root.rglob("*") if p.is_file())
    kinds = [
        (
            "ami/app{a}/models/m{i}.py",
            "from django.db import models\n\n\nclass M{i}(models.Model):\n    name = models.CharField(max_length=10)\n",
        ),
        (
            "ami/app{a}/migrations/{i:04d}_auto.py",
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = []\n",
        ),
        (
            "ami/app{a}/templates/page{i}.html",
            "<html><body>{{% block content %}}{i}{{% endblock %}}</body></html>\n",
        ),
        ("ui/src/components/C{i}.tsx", "export const C{i} = () => null;\n"),
        ("docs/page{i}.md", "# Page {i}\n\nSome text.\n"),
        ("ami/app{a}/tests/test_{i}.py", "def test_{i}():\n    assert True\n"),
        ("node_modules/pkg{a}/index{i}.js", "module.exports = {i};\n"),
        (".venv/lib/python3.11/site-packages/mod{a}/f{i}.py", "X = {i}\n"),
        ("data/fixtures/f{i}.json", '{{"id": {i}}}\n'),
        ("deploy/notes/n{i}.yaml", "name: n{i}\nvalue: {i}\n"),
    ]
    (root / ".venv" / "pyvenv.cfg").parent.mkdir(parents=True, exist_ok=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    i = 0
    while written < files:
        pattern, body = kinds[i % len(kinds)]
        path = root / pattern.format(a=i % 40, i=i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body.format(i=i))
        written += 1
        i += 1
    return sum(1 for p in root.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from pgslots.audit import run_audit
    from pgslots.report.audit import render_json

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        created = make_tree(root, args.files)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            diagnosis = run_audit(root)
            render_json(diagnosis)
            times.append(time.perf_counter() - started)
        walk_started = time.perf_counter()
        walked = sum(len(files) for _, _, files in os.walk(root))
        walk_time = time.perf_counter() - walk_started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        best, worst = min(times), max(times)
        demand = diagnosis.topology.demand
        print(f"tree: {created} files (node_modules and .venv included, skipped by the walker)")
        print(
            f"audit: best {best * 1000:.0f} ms, worst {worst * 1000:.0f} ms over {args.runs} runs; target < 2000 ms: {'ok' if best < 2 else 'MISSED'}"
        )
        print(
            f"reference: a bare os.walk of the same tree ({walked} files, no skipping) takes {walk_time * 1000:.0f} ms; "
            f"audit / walk = {best / walk_time:.1f}x (there is no peer tool for this audit)"
        )
        print(f"throughput: {created / best:,.0f} files/s; peak RSS {rss_mb:.0f} MiB")
        print(
            f"result: {len(diagnosis.topology.groups)} groups, steady {demand.steady}, worst {demand.worst}, "
            f"{len(diagnosis.findings)} findings, {len(diagnosis.remedies)} remedies"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
