"""`pgslots audit PATH`: the connection budget of a Django + Celery deployment, from its repository."""

from __future__ import annotations

from pathlib import Path

import typer

from pgslots.audit import parse_assumptions, run_audit
from pgslots.cli import FailOn, OutputFormat, app, emit, exit_code_for, formats, guarded
from pgslots.report.audit import render_json, render_markdown, render_sarif, render_text

FORMATS = formats("text", "json", "markdown", "sarif")


@app.command("audit")
@guarded
def audit_command(
    path: Path = typer.Argument(
        ...,
        metavar="PATH",
        help="The deployment repository (settings, compose/Kubernetes/Procfile, env files).",
    ),
    assume: list[str] | None = typer.Option(
        None,
        "--assume",
        "-a",
        metavar="NAME=VALUE",
        help="Supply a count the repository cannot show, e.g. web.hosts=16, celeryworker.cpus=8, server.max_connections=200. Repeatable.",
    ),
    fmt: FORMATS = typer.Option(FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    fail_on: FailOn = typer.Option(
        FailOn.error,
        "--fail-on",
        help="Exit 1 when a finding is at or above this severity (error, warning, info, never).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    project: str | None = typer.Option(
        None,
        "--project",
        metavar="PATH",
        help="The project folder inside PATH to audit, when the tree holds several Django projects (the audit names them).",
    ),
    unit: str | None = typer.Option(
        None,
        "--unit",
        metavar="NAME",
        help="Audit this deployment unit (as listed under 'Deployment units', e.g. Procfile, kubernetes, docker-compose.prod) "
        "instead of the one the audit keeps.",
    ),
) -> None:
    """Read a deployment repository (never running it) and compute its PostgreSQL connection budget:
    every process group's steady and worst-case connections with file:line evidence, the
    usable slots, findings with hints, and remedies with their predicted effect.

    Examples:

    \b
      pgslots audit .
      pgslots audit ~/src/shop --assume web.hosts=16 --assume server.max_connections=100
      pgslots audit . --format json -o audit.json    # then: pgslots probe DSN --topology audit.json
      pgslots audit . --format sarif -o pgslots.sarif --fail-on error
      pgslots audit monorepo --project services/shop

    """
    fmt = OutputFormat(fmt)
    diagnosis = run_audit(path, parse_assumptions(assume or []), project=project, unit=unit)
    renderer = {
        OutputFormat.json: render_json,
        OutputFormat.markdown: render_markdown,
        OutputFormat.sarif: render_sarif,
    }.get(fmt, render_text)
    emit(renderer(diagnosis), output, fold=fmt is OutputFormat.text)
    raise typer.Exit(exit_code_for(diagnosis.findings, fail_on))
