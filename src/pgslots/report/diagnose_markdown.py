"""`diagnose --format markdown`: an incident write-up to paste into an issue.

Same outline as the HTML report (`diagnose_outline`), in GitHub-flavoured markdown:
headings, tables, task lists for the verification items. Charts live in the HTML report only;
the markdown ends by saying how to get them.
"""

from __future__ import annotations

from pgslots.diagnosis import Diagnosis
from pgslots.report.diagnose_outline import (
    Block,
    Bullets,
    Checklist,
    Figure,
    Paragraph,
    Table,
    build,
)


def render(diagnosis: Diagnosis) -> str:
    outline = build(diagnosis)
    out = [f"# {outline.title}", ""]
    if outline.headline:
        out += [f"> {outline.headline}", ""]
    if outline.first:
        first = outline.first
        out += [f"**Do this first: {first.remedy}.** Change: {first.change}. {first.effect}", ""]
        if first.then:
            out += [first.then, ""]
    for section in outline.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            lines = _block(block)
            if lines:
                out += lines + [""]
    out.append(
        "<sub>Written by `pgslots diagnose`; every number above traces to an input row, a file:line or the "
        "budget model. Charts: `--format html`.</sub>"
    )
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Bullets):
        return [
            f"{i}. {item}" if block.ordered else f"- {item}"
            for i, item in enumerate(block.items, 1)
        ]
    if isinstance(block, Checklist):
        return [f"- [{'x' if done else ' '}] {text}" for done, text in block.items]
    if isinstance(block, Table):
        aligns = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
        return [
            "| " + " | ".join(_cell(h) for h in block.headers) + " |",
            "|" + "|".join(aligns) + "|",
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows),
        ]
    if isinstance(block, Figure):
        return []
    raise TypeError(f"unknown block {block!r}")
