"""The README's finding-code table is the registry's, and its Quick start has two commands."""

from __future__ import annotations

import re
from pathlib import Path

from pgslots.cli.codes import render_codes_markdown
from pgslots.findings import load_all_checks

README = Path(__file__).resolve().parent.parent / "README.md"


def between(text: str, marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", text, re.S)
    assert match, f"README.md lacks the <!-- {marker} --> block"
    return match.group(1)


def test_readme_code_table_matches_the_registry():
    table = between(README.read_text(), "codes").strip()
    expected = render_codes_markdown(load_all_checks()).strip() if load_all_checks() else ""
    assert table == expected, "regenerate with: pgslots codes --format markdown (between <!-- codes --> markers)"


def test_quick_start_is_exactly_two_commands():
    block = between(README.read_text(), "quickstart")
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("```")]
    assert len(commands) == 2
    assert "pytest" in commands[1]
