"""The README stays short and true: two Quick start commands, excerpts of real output, and the
finding-code table in docs/codes.md is the registry's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pgslots.cli.codes import render_codes_markdown
from pgslots.rules import load_all_checks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CODES = ROOT / "docs" / "codes.md"
README_MAX_BYTES = 20_000


def between(text: str, marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", text, re.S)
    assert match, f"lacks the <!-- {marker} --> block"
    return match.group(1)


def test_code_table_matches_the_registry():
    table = between(CODES.read_text(), "codes").strip()
    expected = render_codes_markdown(load_all_checks()).strip()
    assert table == expected, (
        "regenerate with: pgslots codes --format markdown (between <!-- codes --> markers in docs/codes.md)"
    )


def test_quick_start_is_exactly_two_commands():
    block = between(README.read_text(), "quickstart")
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("```")]
    assert len(commands) == 2
    assert "pytest" in commands[1]


def test_readme_is_short_and_its_links_exist():
    text = README.read_text()
    assert len(text.encode()) <= README_MAX_BYTES
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


@pytest.mark.parametrize("name", ["events", "audit", "diagnose"])
def test_readme_excerpts_are_lines_of_the_real_output_in_order(name: str):
    """Each excerpt is its command, then lines the real output has, in the same order."""
    block = between(README.read_text(), f"excerpt:{name}")
    lines = [line for line in block.splitlines() if line and not line.startswith("```")]
    command, shown = lines[0], lines[1:]
    assert command.startswith("$ pgslots ")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "pgslots", *command[2:].split()[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    assert result.returncode in (0, 1), result.stderr
    real = result.stdout.splitlines()
    position = 0
    for line in shown:
        assert line in real[position:], f"not in the real output (or out of order): {line}"
        position = real.index(line, position) + 1
