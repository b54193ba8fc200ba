"""`pgslots lab` and `pgslots demo`: reproduce the incident on a throwaway PostgreSQL and
measure each remedy under the same load.

Everything heavy (Django, Celery, gunicorn, uvicorn, the embedded PostgreSQL) is imported
only inside the commands, so the base package works without the `lab` extra and these
commands can say how to get it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from pgslots.cli import (
    FailOn,
    OutputFormat,
    app,
    emit,
    exit_code_for,
    fail,
    formats,
    guarded,
    stderr_is_terminal,
)
from pgslots.errors import InputError

LAB_FORMATS = formats("text", "json", "markdown")
DEMO_FORMATS = formats("text", "json")

LAB_MODULES = ("django", "celery", "gunicorn", "uvicorn", "uvicorn_worker", "psycopg_pool")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken install
        return False


def require_lab_extra() -> None:
    missing = [name for name in LAB_MODULES if not _installed(name)]
    if missing:
        raise InputError(
            f"the lab needs the lab extra ({', '.join(missing)} missing): pip install 'pgslots[lab]'"
        )


def _progress(quiet: bool):
    started = time.monotonic()

    def say(message: str) -> None:
        if not quiet:
            typer.echo(f"[{time.monotonic() - started:5.1f} s] {message}", err=True)

    return say


def _binaries(postgres_bin: Path | None):
    from pgslots.lab.postgres import PostgresUnavailable, binaries_at, default_binaries

    try:
        return binaries_at(postgres_bin) if postgres_bin else default_binaries()
    except PostgresUnavailable as exc:
        raise InputError(str(exc), path=str(postgres_bin) if postgres_bin else None) from exc


def _check_factor(name: str, value: float) -> None:
    if not 0.1 <= value <= 10:
        raise InputError(f"{name} must be between 0.1 and 10, got {value}")


@app.command("lab")
@guarded
def lab_command(
    scenario: str = typer.Option(
        "baseline", "--scenario", "-s", help="A scenario name, a comma-separated list, or 'all'."
    ),
    scale: float = typer.Option(
        1.0,
        "--scale",
        help="Multiply every size (slots, processes, pool sizes, arrival rates) together.",
    ),
    duration: float = typer.Option(
        1.0, "--duration", help="Stretch (>1) or shrink (<1) the load's stages and its quiet tail."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Keep every artifact (server logs, New Relic-format events, samples) in DIR.",
    ),
    postgres_bin: Path | None = typer.Option(
        None,
        "--postgres-bin",
        help="Use this PostgreSQL bin directory (default: the embedded PostgreSQL 18).",
    ),
    broker: str | None = typer.Option(
        None,
        "--broker",
        help="Celery broker URL (default: kombu's filesystem transport, no server needed).",
    ),
    fmt: LAB_FORMATS = typer.Option(LAB_FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the comparison to this file."
    ),
    list_scenarios: bool = typer.Option(False, "--list", help="List the scenarios and exit."),
    fail_on: FailOn = typer.Option(
        FailOn.error,
        "--fail-on",
        help="Exit 1 when a finding is at or above this severity (the lab's are warnings: a remedy "
        "that did not help, a baseline that did not reproduce).",
    ),
) -> None:
    """Reproduce connection-slot exhaustion with real servers and measure each remedy.

    Starts a throwaway PostgreSQL, the sample Django app under its real web server and a
    Celery prefork worker, drives an open-loop burst of requests and tasks, and records
    what the server, the app and an APM would have seen. Scenarios: baseline (the
    incident's shape), conn-max-age-0, django-pool, pgbouncer, limit-concurrency,
    wsgi-gthread, fewer-workers.

    Examples:

    \b
      pgslots lab --scenario baseline --out runs/today
      pgslots lab --scenario all --format markdown --out runs/all
      pgslots lab --scenario baseline,pgbouncer --postgres-bin /usr/lib/postgresql/15/bin
      pgslots lab --list

    """
    fmt = OutputFormat(fmt)
    from pgslots.lab import scenarios as catalogue

    if list_scenarios:
        emit("\n".join(f"{s.name:<18} {s.change}" for s in catalogue.SCENARIOS.values()), output)
        return
    _check_factor("--scale", scale)
    _check_factor("--duration", duration)
    try:
        chosen = catalogue.resolve(scenario)
    except KeyError as exc:
        raise InputError(
            f"--scenario: unknown scenario {exc.args[0]!r} (one of: {', '.join(catalogue.SCENARIOS)}, all)"
        ) from None
    require_lab_extra()
    results, meta = _run(
        chosen, scale, duration, out, postgres_bin, broker, quiet=not stderr_is_terminal()
    )
    from pgslots.lab import render
    from pgslots.report.findings import finding_items_markdown, finding_lines
    from pgslots.rules.lab import check_lab

    findings = check_lab(results)
    if fmt is OutputFormat.json:
        text = render.to_json(results, meta, findings=findings)
    elif fmt is OutputFormat.markdown:
        text = "\n".join(
            [
                render.render_markdown(results),
                "",
                "### Findings",
                "",
                *finding_items_markdown(findings),
            ]
        )
    else:
        text = render.render_text(results) + "\n\n" + render.legend()
        if out:
            text += f"\nArtifacts: {out}"
        if findings:
            text += "\n\n" + "\n".join([f"Findings ({len(findings)})", *finding_lines(findings)])
    emit(text, output, fold=fmt is OutputFormat.text)
    raise typer.Exit(exit_code_for(findings, fail_on))


@app.command("demo")
@guarded
def demo_command(
    out: Path | None = typer.Option(None, "--out", help="Keep every artifact of the run in DIR."),
    postgres_bin: Path | None = typer.Option(
        None,
        "--postgres-bin",
        help="Use this PostgreSQL bin directory (default: the embedded PostgreSQL 18).",
    ),
    fmt: DEMO_FORMATS = typer.Option(DEMO_FORMATS.text, "--format", "-f", help="Output format."),  # type: ignore[valid-type]  # cli.formats' per-command Enum, read by Typer
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file."
    ),
) -> None:
    """Reproduce the incident, explain it from its own evidence, and show which remedy fixes it.

    Runs the baseline and the remedies that fit this machine (about two minutes), reads
    the baseline's New Relic-format events and server log back with the events pipeline,
    and prints what happened and what each remedy measured.

    Examples:

    \b
      pgslots demo
      pgslots demo --out demo-run && pgslots events demo-run/baseline/newrelic/nerdgraph.json
      pgslots demo --postgres-bin /usr/lib/postgresql/15/bin --format json

    """
    fmt = OutputFormat(fmt)
    require_lab_extra()
    from pgslots.lab import demo, render
    from pgslots.lab import scenarios as catalogue

    chosen = [catalogue.SCENARIOS[name] for name in catalogue.DEMO_SCENARIOS]
    results, meta = _run(
        chosen, 1.0, 1.0, out, postgres_bin, None, quiet=not stderr_is_terminal(), analyse=True
    )
    analysis = meta.pop("events_analysis", [])
    if fmt is OutputFormat.json:
        text = render.to_json(
            results, {**meta, **demo.summary_json(results, analysis)}, command="demo"
        )
    else:
        text = demo.story(results, analysis, out)
    emit(text, output, fold=fmt is OutputFormat.text)


@contextlib.contextmanager
def _lab_failures() -> Iterator[None]:
    """A run that cannot go on (a server that would not start or died, SIGTERM) ends with
    one line on stderr, after the run has cleaned up; never a traceback."""
    from pgslots.interrupts import Terminated
    from pgslots.lab.app import AppStartError
    from pgslots.lab.pgbouncer import PgbouncerUnavailable
    from pgslots.lab.postgres import PostgresUnavailable
    from pgslots.lab.processes import ChildDied

    try:
        yield
    except (AppStartError, ChildDied, PostgresUnavailable, PgbouncerUnavailable) as exc:
        first, _, rest = str(exc).partition("\n")
        fail(f"lab run aborted: {first}" + (" (details in the run's logs)" if rest else ""))
    except Terminated as exc:
        typer.echo(f"pgslots: {exc}", err=True)
        raise typer.Exit(128 + exc.signum) from None


def _run(chosen, scale, duration, out, postgres_bin, broker, *, quiet, analyse=False):
    from pgslots.lab import render
    from pgslots.lab.run import Lab, LabOptions, temporary_out
    from pgslots.lab.scenarios import DEFAULT_LOAD, scaled_load

    binaries = _binaries(postgres_bin)
    plan = scaled_load(DEFAULT_LOAD, scale, duration=duration)
    scenarios = [s.scaled(scale) for s in chosen]
    meta = {
        "postgres": str(binaries),
        "scale": scale,
        "load": {
            "stages": [vars(s) for s in plan.stages],
            "tail_seconds": plan.tail_seconds,
            "max_in_flight": plan.max_in_flight,
            "open_loop": True,
        },
        "sampler_slot": "max_connections is the scenario's figure + 1 for the lab's sampler",
    }
    lab = Lab(LabOptions(binaries=binaries, broker_url=broker), plan, _progress(quiet))
    with temporary_out(out) as out_dir, _lab_failures():
        results = lab.run(scenarios, out_dir)
        (out_dir / "comparison.json").write_text(render.to_json(results, meta))
        (out_dir / "comparison.md").write_text(render.render_markdown(results) + "\n")
        if analyse:
            from pgslots.lab.analysis import analyse_baseline

            meta["events_analysis"] = analyse_baseline(
                out_dir / "baseline", show_command=out is not None
            )
    return results, meta


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
