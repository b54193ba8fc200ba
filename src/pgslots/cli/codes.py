"""`pgslots codes`: every finding code, its severity, title and hint."""

from __future__ import annotations

from pathlib import Path

import typer

from pgslots.cli import OutputFormat, app, emit, formats, guarded
from pgslots.envelope import dumps, envelope
from pgslots.findings import Check
from pgslots.rules import load_all_checks

FORMATS = formats("text", "json", "markdown")


def render_codes_markdown(checks: dict[str, Check]) -> str:
    lines = ["| Code | Severity | Area | Title | Hint |", "|---|---|---|---|---|"]
    for check in checks.values():
        hint = check.hint.replace("|", "\\|")
        lines.append(
            f"| `{check.code}` | {check.severity.value} | {check.area} | {check.title} | {hint} |"
        )
    return "\n".join(lines)


def render_codes_text(checks: dict[str, Check]) -> str:
    return "\n".join(
        f"{c.code}  {c.severity.value:<7}  {c.area:<8}  {c.title}\n          hint: {c.hint}"
        for c in checks.values()
    )


@app.command("codes")
@guarded
def codes_command(
    fmt: FORMATS = typer.Option(FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
) -> None:
    """List every finding code with its severity and hint.

    Examples:

    \b
      pgslots codes
      pgslots codes --format markdown

    """
    fmt = OutputFormat(fmt)
    checks = load_all_checks()
    if fmt is OutputFormat.json:
        codes = [
            {
                "code": c.code,
                "severity": c.severity.value,
                "area": c.area,
                "title": c.title,
                "hint": c.hint,
            }
            for c in checks.values()
        ]
        text = dumps(envelope("codes", {"codes": codes}))
    elif fmt is OutputFormat.markdown:
        text = render_codes_markdown(checks)
    else:
        text = render_codes_text(checks)
    emit(text, output, fold=fmt is OutputFormat.text)
