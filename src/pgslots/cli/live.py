"""`pgslots probe` and `pgslots watch`: the live server (and pgbouncer), read with one careful
connection, even while it is full.

Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it, 2 usage or input
error (bad DSN, unreachable server, failed login, not a PostgreSQL server), and
3 = the server refused the probe because it is full for the probe's role. 3 is neither a
threshold-dependent finding (1) nor bad input (2): it is the fact an on-call script wants
to branch on, so it wins over 0 and 1.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from pathlib import Path

import typer

from pgslots.cli import FailOn, OutputFormat, app, emit, exit_code_for, formats, guarded
from pgslots.deploy.saved import load_topology
from pgslots.errors import InputError
from pgslots.interrupts import Terminated, termination_as_exception
from pgslots.live.connect import ConnectSettings
from pgslots.live.model import Snapshot
from pgslots.live.probe import ProbeRequest, probe
from pgslots.live.snapshot import SnapshotOptions
from pgslots.redact import REDACTOR

PROBE_FORMATS = formats("text", "json", "markdown")
WATCH_FORMATS = formats("text", "json")

EXIT_SERVER_FULL = 3


DSN_HELP = "The PostgreSQL server: a libpq DSN or URL. Its password never appears in any output."
PGBOUNCER_HELP = (
    "pgbouncer (or PgCat, PgDog) admin console DSN, e.g. 'host=db port=6432 dbname=pgbouncer "
    "user=stats'. Read too, and instead of the server when the server is full."
)
TOPOLOGY_HELP = "An audit's JSON (pgslots audit --format json): how many connections each process group should hold."
APP_ROLE_HELP = "The application's role: usable slots and headroom are computed for it (default: the DSN's user)."
WARN_HELP = "Warn when the headroom falls under this share of the usable slots: 20% or 0.2."
TIMEOUT_HELP = "Seconds for connect_timeout and statement_timeout (lock_timeout is 1 s)."


def parse_warn(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise InputError(f"--warn {text!r}: expected a share such as 20% or 0.2") from None
    if text.strip().endswith("%") or value > 1:
        value /= 100
    if not 0 <= value <= 1:
        raise InputError(f"--warn {text!r}: expected a share between 0% and 100%")
    return value


def _request(
    dsn: str, pgbouncer: str | None, topology: Path | None, app_role: str | None, timeout: float
) -> ProbeRequest:
    if timeout <= 0:
        raise InputError("--timeout must be positive")
    options = SnapshotOptions(
        app_role=app_role, topology=load_topology(topology) if topology else None
    )
    return ProbeRequest(
        ConnectSettings(dsn, connect_timeout=timeout, statement_timeout=timeout),
        pgbouncer_dsn=pgbouncer,
        options=options,
    )


def render(snapshot: Snapshot, findings: list, fmt: OutputFormat) -> str:
    from pgslots.report.snapshot import render_json, render_markdown, render_text

    if fmt is OutputFormat.json:
        return render_json(snapshot, findings)
    if fmt is OutputFormat.markdown:
        return render_markdown(snapshot, findings)
    return render_text(snapshot, findings)


@app.command("probe")
@guarded
def probe_command(
    dsn: str = typer.Argument(..., metavar="DSN", help=DSN_HELP, show_default=False),
    pgbouncer: str | None = typer.Option(None, "--pgbouncer", help=PGBOUNCER_HELP),
    topology: Path | None = typer.Option(None, "--topology", help=TOPOLOGY_HELP),
    app_role: str | None = typer.Option(None, "--app-role", help=APP_ROLE_HELP),
    warn: str = typer.Option("20%", "--warn", help=WARN_HELP),
    fmt: PROBE_FORMATS = typer.Option(PROBE_FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.error, "--fail-on", help="Exit 1 on findings at or above this severity."
    ),
    timeout: float = typer.Option(5.0, "--timeout", help=TIMEOUT_HELP),
) -> None:
    """Read who holds the server's connection slots, on one read-only connection.

    Works with a pg_monitor role (no superuser) and says what was hidden for lack of
    privilege. When the server refuses the probe because it is full, that refusal is the
    finding (exit code 3) and the pgbouncer admin console is read instead.

    Examples:

    \b
      pgslots probe "host=db.internal user=monitor dbname=app"
      pgslots probe postgres://monitor@db:5432/app --app-role app --format markdown
      pgslots probe "$DATABASE_URL" --pgbouncer "host=db port=6432 dbname=pgbouncer user=stats"
      pgslots probe "$DATABASE_URL" --topology audit.json --format json -o snapshot.json

    Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 bad input or server not
    reachable, 3 server full for the probe's role.
    """
    from pgslots.rules.live import check_snapshot

    fmt = OutputFormat(fmt)
    warn_fraction = parse_warn(warn)
    snapshot = probe(_request(dsn, pgbouncer, topology, app_role, timeout))
    findings = check_snapshot(snapshot, warn_fraction=warn_fraction)
    emit(render(snapshot, findings, fmt), output, fold=fmt is OutputFormat.text)
    if snapshot.refused is not None:
        raise typer.Exit(EXIT_SERVER_FULL)
    raise typer.Exit(exit_code_for(findings, fail_on))


@app.command("watch")
@guarded
def watch_command(
    dsn: str = typer.Argument(..., metavar="DSN", help=DSN_HELP, show_default=False),
    interval: float = typer.Option(5.0, "--interval", "-n", help="Seconds between snapshots."),
    count: int | None = typer.Option(
        None, "--count", help="Stop after this many snapshots (default: until Ctrl-C)."
    ),
    warn: str = typer.Option("20%", "--warn", help=WARN_HELP),
    record: Path | None = typer.Option(
        None, "--record", help="Append every snapshot to this JSON Lines file."
    ),
    prometheus: str | None = typer.Option(
        None,
        "--prometheus",
        help="Serve the latest snapshot as Prometheus metrics on HOST:PORT (:PORT = all interfaces).",
    ),
    pgbouncer: str | None = typer.Option(None, "--pgbouncer", help=PGBOUNCER_HELP),
    app_role: str | None = typer.Option(None, "--app-role", help=APP_ROLE_HELP),
    topology: Path | None = typer.Option(None, "--topology", help=TOPOLOGY_HELP),
    fmt: WATCH_FORMATS = typer.Option(  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
        WATCH_FORMATS.text,
        "--format",
        "-f",
        help="text (a live view on a terminal, one line per snapshot otherwise) "
        "or json (one snapshot per line).",
    ),
    timeout: float = typer.Option(5.0, "--timeout", help=TIMEOUT_HELP),
) -> None:
    """Watch the slots: a snapshot every --interval on the same single connection.

    On a terminal it shows a live view (slots used and usable, backends by application and
    state, a short history, a warning line under --warn); in a pipe it prints one line per
    snapshot. If the connection drops it reconnects with backoff; while the server is full,
    each refusal is recorded. Stop with Ctrl-C (exit 0).

    Examples:

    \b
      pgslots watch "host=db user=monitor dbname=app" --app-role app
      pgslots watch "$DATABASE_URL" --interval 2 --record slots.jsonl
      pgslots watch "$DATABASE_URL" --prometheus :9187 --pgbouncer "host=db port=6432 dbname=pgbouncer user=stats"
      pgslots watch "$DATABASE_URL" --count 12 --interval 5 --format json > slots.jsonl

    """
    from pgslots.live.exporter import Exporter
    from pgslots.live.record import Recorder
    from pgslots.live.watch import Watcher

    fmt = OutputFormat(fmt)
    warn_fraction = parse_warn(warn)
    if interval <= 0:
        raise InputError("--interval must be positive")
    if count is not None and count < 1:
        raise InputError("--count must be at least 1")
    watcher = Watcher(_request(dsn, pgbouncer, topology, app_role, timeout), interval=interval)
    with contextlib.ExitStack() as stack:
        sinks = []
        if record is not None:
            sinks.append(stack.enter_context(Recorder(record)).write)
        if prometheus is not None:
            exporter = Exporter(prometheus)
            stack.callback(exporter.close)
            sinks.append(exporter.update)
            typer.echo(
                f"pgslots: serving metrics on http://{exporter.host}:{exporter.port}/metrics",
                err=True,
            )
        display, finish = _display(fmt, warn_fraction)
        stack.callback(finish)
        sinks.append(display)

        def on_snapshot(snapshot: Snapshot) -> None:
            for sink in sinks:
                sink(snapshot)

        # Ctrl-C, or SIGTERM from a service manager: stop after closing the exporter and
        # flushing the record (the ExitStack's callbacks).
        with contextlib.suppress(KeyboardInterrupt, Terminated), termination_as_exception():
            watcher.run(on_snapshot, count=count)
    raise typer.Exit(0)


def _display(fmt: OutputFormat, warn_fraction: float):
    """(show one snapshot, finish): a Rich live view on a terminal, lines otherwise."""
    from rich.console import Console
    from rich.live import Live

    from pgslots.report.snapshot import render_json, summary_line
    from pgslots.report.watch_view import HISTORY, render_view

    def line(text: str) -> None:
        sys.stdout.write(REDACTOR.scrub(text) + "\n")
        sys.stdout.flush()

    if fmt is OutputFormat.json:
        return (lambda s: line(render_json(s, command="watch", indent=None))), (lambda: None)
    console = Console()
    if not console.is_terminal:
        return (lambda s: line(summary_line(s, warn_fraction))), (lambda: None)
    history: deque[Snapshot] = deque(maxlen=HISTORY)
    live = Live(console=console, auto_refresh=False, transient=False)
    live.start()

    def show(snapshot: Snapshot) -> None:
        history.append(snapshot)
        live.update(render_view(snapshot, list(history), warn_fraction), refresh=True)

    return show, live.stop
