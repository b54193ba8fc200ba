"""`pgslots events`: the incident picture from error exports and logs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from pgslots.cli import (
    FailOn,
    OutputFormat,
    app,
    emit,
    exit_code_for,
    formats,
    guarded,
    stderr_is_terminal,
    text_width,
)
from pgslots.errors import InputError
from pgslots.events.pipeline import investigate
from pgslots.events.sources import ReadOptions, all_sources, input_size
from pgslots.events.timeline import FACETS, TimelineOptions, parse_bucket
from pgslots.events.times import parse_user_time, parse_zone
from pgslots.report.events import render_json, render_markdown, render_text

FORMATS = formats("text", "json", "markdown")
_FACET_HELP = f"Break down by: {', '.join(FACETS)} (repeat or comma-separate)."

PROGRESS_MIN_BYTES = 16 * 1024 * 1024
"""Below this the reading is over before a bar would be worth drawing."""


def _facets(values: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        names += [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if name not in FACETS:
            raise InputError(f"--facet {name!r} is not a facet (use one of: {', '.join(FACETS)})")
    return tuple(dict.fromkeys(names))


@contextlib.contextmanager
def _progress(paths: list[Path]) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for long inputs on a terminal; nothing in pipes or CI."""
    total = sum(input_size(p) for p in paths)
    if not stderr_is_terminal() or total < PROGRESS_MIN_BYTES:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("read", total=total)
        yield lambda n: progress.advance(task, n)


def _formats_help() -> str:
    return "; ".join(f"{s.name}: {s.description}" for s in all_sources())


@app.command("events")
@guarded
def events_command(
    files: list[Path] = typer.Argument(
        ..., metavar="FILE", help="Exports or logs to read (.gz too)."
    ),
    input_format: str | None = typer.Option(
        None,
        "--input-format",
        "-i",
        help="Force the input format instead of detecting it (see below).",
    ),
    log_line_prefix: str | None = typer.Option(
        None,
        "--log-line-prefix",
        help="PostgreSQL stderr logs: the server's log_line_prefix, e.g. '%m [%p] %q%u@%d '.",
    ),
    tz: str = typer.Option(
        "UTC", "--tz", help="Zone of times written without one (IANA name or +02:00)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only events at or after this time (ISO 8601)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Only events before this time (ISO 8601)."
    ),
    bucket: str | None = typer.Option(
        None,
        "--bucket",
        help="Bucket size: 1m, 5m, 1h, ... (default: chosen from the span, at most 12 buckets).",
    ),
    align: str = typer.Option(
        "auto",
        "--align",
        help="Where buckets start: auto (--since, else the input's own grid, else the first event's minute), "
        "first, clock, or a time.",
    ),
    facet: list[str] = typer.Option([], "--facet", help=_FACET_HELP),
    fmt: FORMATS = typer.Option(FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.never,
        "--fail-on",
        help="Exit 1 when a finding is at or above this severity (default never: the failures are "
        "the input, so by default they are reported, not signalled).",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="Processes reading a large plain PostgreSQL stderr log (default: one per CPU, at most 3, for files "
        "of 64 MiB or more; 1: one pass). Same result either way.",
    ),
) -> None:
    """Explain a connection-failure incident from its evidence: when, how many, which
    messages, which transactions, what shape.

    Reads New Relic (NerdGraph JSON, UI CSV/JSON exports, JSON Lines), Sentry event JSON,
    application logs with Python tracebacks (gunicorn, uvicorn, Celery), pgbouncer logs and
    PostgreSQL server logs (stderr, csvlog, jsonlog); the format is detected from the content.

    Examples:

    \b
      pgslots events examples/newrelic-incident.json
      pgslots events export.csv --bucket 1m --facet transaction,host
      pgslots events postgresql-*.log.gz --log-line-prefix '%m [%p] %q%u@%d ' --tz Europe/Paris
      pgslots events postgresql.log --jobs 1 --format json
      pgslots events sentry.json app.log --since 2026-05-11T22:00Z --format markdown -o incident.md

    Exit codes: 0 done (or no finding at or above --fail-on); 1 findings at or above
    --fail-on; 2 bad input or usage (one line on stderr).
    """
    fmt = OutputFormat(fmt)
    from pgslots.rules.events import check_incident

    zone = parse_zone(tz)
    start = parse_user_time(since, zone, "--since") if since else None
    end = parse_user_time(until, zone, "--until") if until else None
    if start and end and end <= start:
        raise InputError("--until must be later than --since")
    timeline = TimelineOptions(
        bucket_seconds=parse_bucket(bucket) if bucket else None,
        align=align,
        since=start,
        until=end,
        facets=_facets(facet),
        tz=zone,
    )
    with _progress(files) as progress:
        options = ReadOptions(
            log_line_prefix=log_line_prefix,
            tz=zone,
            since=start,
            until=end,
            progress=progress,
            jobs=jobs,
        )
        incident = investigate(files, options, timeline, input_format=input_format)
    findings = check_incident(incident)
    if fmt is OutputFormat.json:
        text = render_json(incident, findings)
    elif fmt is OutputFormat.markdown:
        text = render_markdown(incident, findings)
    else:
        text = render_text(
            incident,
            findings,
            color=output is None and sys.stdout.isatty(),
            width=(text_width() if output is None else None) or 110,
        )
    emit(text, output)
    raise typer.Exit(exit_code_for(findings, fail_on))


events_command.__doc__ = (
    (events_command.__doc__ or "") + "\n    Input formats: " + _formats_help() + "\n"
)
