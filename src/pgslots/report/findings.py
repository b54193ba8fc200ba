"""Findings as text and Markdown: one layout for every command that has findings."""

from __future__ import annotations

from collections.abc import Sequence

from pgslots.findings import Finding

LOCATIONS_SHOWN = 4


def _locations(finding: Finding) -> list[str]:
    """Where the finding comes from: file:line first, bare paths only when nothing has a line."""
    located = [e.location() for e in finding.evidence if e.line is not None]
    located = located or [e.location() for e in finding.evidence]
    return list(dict.fromkeys(located))[:LOCATIONS_SHOWN]


def finding_lines(findings: Sequence[Finding]) -> list[str]:
    """Code, severity and title, then the message, where, hint and remedies, indented."""
    lines: list[str] = []
    for f in findings:
        lines.append(f"  {f.code} {f.severity.value:<7} {f.title}")
        lines.append(f"      {f.message}")
        if located := _locations(f):
            lines.append(f"      at {', '.join(located)}")
        lines.append(f"      hint: {f.hint}")
        if f.remedies:
            lines.append(f"      remedies: {', '.join(f.remedies)}")
    return lines


def finding_items_markdown(findings: Sequence[Finding]) -> list[str]:
    """One list item per finding, with its hint as a sub-item."""
    lines: list[str] = []
    for f in findings:
        located = ", ".join(_locations(f))
        lines.append(
            f"- **{f.code}** ({f.severity.value}) {f.title}: {f.message}"
            + (f" `{located}`" if located else "")
        )
        lines.append(f"  - hint: {f.hint}")
    return lines
