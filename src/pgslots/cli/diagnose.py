"""`pgslots diagnose`: every input joined into one report."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pgslots.cli import FailOn, OutputFormat, app, emit, exit_code_for, formats, guarded

if TYPE_CHECKING:
    from pgslots.diagnosis import Diagnosis

FORMATS = formats("text", "markdown", "html", "json")


@app.command("diagnose")
@guarded
def diagnose_command(
    events: list[Path] | None = typer.Option(
        None,
        "--events",
        "-e",
        help="Error exports (New Relic, Sentry) or PostgreSQL server logs; repeatable. "
        "Also the JSON of `pgslots events --format json`.",
    ),
    repo: Path | None = typer.Option(
        None,
        "--repo",
        "-r",
        help="The deployment repository to audit (or the JSON of `pgslots audit --format json`).",
    ),
    project: str | None = typer.Option(
        None,
        "--project",
        metavar="PATH",
        help="With --repo DIR: the project folder inside it, when the tree holds several Django projects.",
    ),
    dsn: str | None = typer.Option(
        None, "--dsn", help="The PostgreSQL server to probe (read-only, one connection)."
    ),
    pgbouncer: str | None = typer.Option(
        None, "--pgbouncer", help="pgbouncer's admin console DSN."
    ),
    watch_record: Path | None = typer.Option(
        None,
        "--watch-record",
        "-w",
        help="JSON Lines from `pgslots watch --record FILE` (or one `probe --format json`).",
    ),
    lab_run: Path | None = typer.Option(
        None, "--lab-run", help="A directory written by `pgslots lab --out DIR`."
    ),
    assume: list[str] | None = typer.Option(
        None,
        "--assume",
        "-a",
        help="A count the repository cannot show, NAME=VALUE (e.g. web.hosts=16); repeatable.",
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="Time zone of event timestamps written without one (e.g. Europe/Paris)."
    ),
    fmt: FORMATS = typer.Option(FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.error, "--fail-on", help="Exit 1 when a finding is at or above this severity."
    ),
) -> None:
    """Join the evidence into one incident report: what failed (events), what the deployment
    can open (repository), what the server allows and holds (live server, watch record),
    what each remedy would do (budget model, lab run). Every input is optional; the report
    says what each missing one would add.

    Examples:

    \b
      pgslots diagnose --events nr-export.json --repo . --assume web.hosts=16
      pgslots diagnose --events nr-export.json --repo . --format markdown -o incident.md
      pgslots diagnose --events postgresql.log --dsn "host=db user=app" --format html -o report.html
      pgslots diagnose --repo . --watch-record burst.jsonl --lab-run lab-out/ --format json

    """
    fmt = OutputFormat(fmt)
    from pgslots.audit import parse_assumptions
    from pgslots.events.times import parse_zone

    if tz is not None:
        parse_zone(tz)  # a usage error, not a note about the events
    if project is not None:
        from pgslots.errors import InputError

        if repo is None or not repo.is_dir() or not (repo / project).is_dir():
            raise InputError(f"--project {project}: expected a folder inside the --repo directory")
        repo = repo / project
    from pgslots.diagnose.gather import Request, gather
    from pgslots.diagnose.join import build

    request = Request(
        events=tuple(events or ()),
        repo=repo,
        dsn=dsn,
        pgbouncer=pgbouncer,
        watch_record=watch_record,
        lab_run=lab_run,
        assume=parse_assumptions(assume or []),
        tz=tz,
    )
    with _events_progress(request.events) as progress:
        request.progress = progress
        gathered = gather(request)
    diagnosis = build(gathered)
    emit(render(diagnosis, fmt), output, fold=fmt is OutputFormat.text)
    raise typer.Exit(exit_code_for(diagnosis.findings, fail_on))


@contextlib.contextmanager
def _events_progress(paths: Sequence[Path]) -> Iterator[Callable[[int], None] | None]:
    """The events command's progress bar for large inputs (on a terminal only). A path that
    cannot be read gets no bar here: the report notes it instead."""
    from pgslots.cli.events import _progress

    if not paths or not all(p.is_file() for p in paths):
        yield None
        return
    with _progress(list(paths)) as progress:
        yield progress


_RENDERERS = {
    OutputFormat.json: "diagnose_json",
    OutputFormat.markdown: "diagnose_markdown",
    OutputFormat.html: "diagnose_html",
}


def render(diagnosis: Diagnosis, fmt: OutputFormat) -> str:
    """The report in `fmt`; each renderer is imported only when asked for (HTML pulls matplotlib)."""
    renderer = importlib.import_module(f"pgslots.report.{_RENDERERS.get(fmt, 'diagnose_text')}")
    text: str = renderer.render(diagnosis)
    return text
