"""The `pgslots` command line: parse options, call one use case, pick a renderer.

Each command lives in its own module of this package and registers itself on `app`; this
module holds what they share: output formats, writing (always through the redactor), exit
codes (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or input error),
and the guard that turns bad input into one line instead of a traceback.
"""

from __future__ import annotations

import enum
import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from pgslots import __version__
from pgslots.errors import InputError
from pgslots.findings import Finding, Severity, at_or_above
from pgslots.redact import REDACTOR

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="pgslots",
    help=(
        "Find out who takes a PostgreSQL server's connection slots, explain a "
        "'too many clients' incident from its evidence, and prove a remedy before shipping it."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"
    sarif = "sarif"


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit."""
    typer.echo(f"pgslots: {REDACTOR.scrub(message)}", err=True)
    raise typer.Exit(code)


def guarded(func: F) -> F:
    """Turn bad input into one clear line and exit 2, Ctrl-C into exit 130, and a bug into
    one line too (PGSLOTS_DEBUG=1 shows the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except InputError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("pgslots: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if os.environ.get("PGSLOTS_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (set PGSLOTS_DEBUG=1 for the traceback)")

    return wrapper  # type: ignore[return-value]


def check_format(fmt: OutputFormat, allowed: Iterable[OutputFormat]) -> None:
    allowed = tuple(allowed)
    if fmt not in allowed:
        names = ", ".join(f.value for f in allowed)
        raise InputError(f"--format {fmt.value} is not available for this command (use one of: {names})")


def emit(text: str, output: Path | None = None) -> None:
    """Write a rendered report to stdout or a file, secrets scrubbed."""
    text = REDACTOR.scrub(text)
    if not text.endswith("\n"):
        text += "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", path=str(output)) from exc


def exit_code_for(findings: Iterable[Finding], fail_on: FailOn) -> int:
    if fail_on is FailOn.never:
        return EXIT_OK
    return EXIT_FINDINGS if at_or_above(findings, Severity(fail_on.value)) else EXIT_OK


def stderr_is_terminal() -> bool:
    """Progress bars and live views only on a terminal, never in pipes or CI logs."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pgslots {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Root options."""


# The module that registers each command, so that a command starts without importing the
# others (psycopg, the lab, ...: a quarter of a second); any other first argument (help, a
# typo, a command not listed here) imports them all.
COMMAND_MODULES = {
    "events": "events", "audit": "audit", "probe": "live", "watch": "live", "lab": "lab", "demo": "lab",
    "diagnose": "diagnose", "codes": "codes",
}


def main() -> None:
    """Console-script entry point."""
    module = COMMAND_MODULES.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if module is not None:
        importlib.import_module(f"pgslots.cli.{module}")
    else:
        from pgslots.cli import audit, codes, diagnose, events, lab, live  # noqa: F401 - they register commands
    app()
