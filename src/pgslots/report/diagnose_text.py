"""`diagnose` on the terminal: the outline, condensed, as plain aligned text.

Plain text (no colour codes) so it reads the same in a terminal, a pipe and a CI log. Long
lists are cut to their first items with a count of the rest; the full write-up is one
`--format markdown` or `--format html` away, and the summary ends by saying so.
"""

from __future__ import annotations

import re
import textwrap

from pgslots.diagnosis import Diagnosis
from pgslots.report.diagnose_outline import Block, Bullets, Checklist, Figure, Paragraph, Table, build

WIDTH = 100
MAX_ITEMS = 8
_MARKS = re.compile(r"\*\*(.+?)\*\*|(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")


def plain(text: str) -> str:
    """Drop the bold and italic marks; keep the backticks, which show what is code."""
    return _MARKS.sub(lambda m: m.group(1) or m.group(2), text)


def render(diagnosis: Diagnosis) -> str:
    outline = build(diagnosis)
    out = [outline.title, "=" * min(WIDTH, len(outline.title))]
    if outline.headline:
        out += _wrap(plain(outline.headline), "")
    for section in outline.sections:
        out += ["", section.title, "-" * len(section.title)]
        for block in section.blocks:
            out += _block(block)
    out += ["", "Full write-up: --format markdown; with charts: --format html --output report.html"]
    return "\n".join(out) + "\n"


def _wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest if rest is not None else " " * len(first),
                         break_on_hyphens=False, break_long_words=False) or [first.rstrip()]


def _cut(items: list[str]) -> list[str]:
    if len(items) <= MAX_ITEMS:
        return items
    return items[:MAX_ITEMS] + [f"  ... and {len(items) - MAX_ITEMS} more"]


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return _wrap(plain(block.text), "")
    if isinstance(block, Bullets):
        lines: list[str] = []
        for i, item in enumerate(block.items[:MAX_ITEMS], 1):
            lines += _wrap(plain(item), f"{i}. " if block.ordered else "- ")
        return lines + _cut([""] * len(block.items))[MAX_ITEMS:]
    if isinstance(block, Checklist):
        lines = []
        for done, text in block.items[:MAX_ITEMS]:
            lines += _wrap(plain(text), "[x] " if done else "[ ] ")
        return lines + _cut([""] * len(block.items))[MAX_ITEMS:]
    if isinstance(block, Table):
        rows = [tuple(plain(c) for c in block.headers)] + [tuple(plain(c) for c in r) for r in block.rows[:MAX_ITEMS * 2]]
        widths = [min(48, max(len(r[i]) for r in rows)) for i in range(len(block.headers))]
        lines = []
        for n, row in enumerate(rows):
            cells = [
                (c.rjust(w) if i in block.numeric else c.ljust(w)) if len(c) <= w else c[: w - 1] + "…"
                for i, (c, w) in enumerate(zip(row, widths))
            ]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        if len(block.rows) > MAX_ITEMS * 2:
            lines.append(f"... and {len(block.rows) - MAX_ITEMS * 2} more rows")
        return lines
    if isinstance(block, Figure):
        return []
    raise TypeError(f"unknown block {block!r}")
