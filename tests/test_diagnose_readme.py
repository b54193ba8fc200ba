"""docs/commands/diagnose.md shows real output: the terminal summary verbatim, and a
markdown excerpt whose every line the real write-up contains, in the same order.

After a change to the report, refresh both with:

    python tests/test_diagnose_readme.py --write
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "commands" / "diagnose.md"  # the full example; README.md shows an excerpt
COMMAND = (
    "diagnose",
    "--events",
    "examples/newrelic-incident.json",
    "--repo",
    "tests/fixtures/repos/writeup",
    "--assume",
    "django.hosts=16",
    "--lab-run",
    "tests/fixtures/lab-run",
)
PROMPT = "$ pgslots " + " ".join(COMMAND) + "\n"
EXCERPT_STARTS = (
    "- **PGS003",
    "Already in place",
    "- `CONN_MAX_AGE=60`",
    "- [ ] `max_connections`",
    "- [ ] Why do 15",
    "- [x] `CONN_MAX_AGE`",
    "- [x] Is the application",
    "1. **R01",
    "2. **R02",
)


def run(*extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", *COMMAND, *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 1, result.stderr  # error findings: the default --fail-on error
    return result.stdout


def section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("<!-- section:diagnose -->", 1)[1].split("<!-- /section:diagnose -->", 1)[0]


def console_block(text: str) -> str:
    return text.split(PROMPT, 1)[1].split("\n```", 1)[0]


def markdown_block(text: str) -> str:
    return text.split("```markdown\n", 1)[1].split("\n```", 1)[0]


def excerpt(markdown: str) -> str:
    """The headings, the lines starting with EXCERPT_STARTS, and the lab table."""
    lines = markdown.splitlines()
    keep = []
    for i, line in enumerate(lines):
        if line.startswith(("## Contributors", "## What we still", "## Directions")):
            keep += ["", line, ""] if keep else [line, ""]
        elif line.startswith("Already in place"):
            keep += ["", line, ""]
        elif line.startswith(EXCERPT_STARTS):
            keep.append(line)
        elif line.startswith("Measured in the lab run"):
            table = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                table.append(row)
            keep += ["", line, "", *table]
    return "\n".join(keep)


def test_the_console_example_is_the_real_output():
    assert console_block(section()) == run().rstrip("\n")


def test_the_markdown_excerpt_is_taken_from_the_real_write_up():
    shown = [line for line in markdown_block(section()).splitlines() if line.strip()]
    real = [line for line in run("--format", "markdown").splitlines() if line.strip()]
    position = 0
    for line in shown:
        assert line in real[position:], f"not in the real output (or out of order): {line[:100]}"
        position = real.index(line, position) + 1


def write() -> None:
    text = README.read_text(encoding="utf-8")
    old = section()
    new = old.replace(console_block(old), run().rstrip("\n"), 1)
    new = new.replace(markdown_block(old), excerpt(run("--format", "markdown")), 1)
    README.write_text(text.replace(old, new, 1), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        sys.exit("usage: python tests/test_diagnose_readme.py --write")
