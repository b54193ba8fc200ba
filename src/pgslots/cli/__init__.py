"""The `pgslots` command line: parse options, call one use case, pick a renderer.

Each command lives in its own module of this package and registers itself on `app`; this
module holds what they share: output formats, writing (always through the redactor), exit
codes, and the guard that turns bad input into one line instead of a traceback.

Exit codes, the same for every command (docs/cli.md):

    0    done; no finding at or above --fail-on
    1    findings at or above --fail-on
    2    usage or input error (one line on stderr: which file, which line, what was expected)
    3    probe: the server refused the probe because it is full for the probe's role
    130  interrupted (Ctrl-C); 128+N: ended by signal N (SIGTERM: 143)
    141  the reader of the output went away (`pgslots watch --format json | head`)
"""

from __future__ import annotations

import enum
import functools
import importlib
import os
import shutil
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
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE, as a shell reports a process killed by it

app = typer.Typer(
    name="pgslots",
    help=(
        "Find out who takes a PostgreSQL server's connection slots, explain a "
        "'too many clients' incident from its evidence, and prove a remedy before shipping it."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"
    sarif = "sarif"


def formats(*names: str) -> Any:
    """The option type of one command's --format: exactly the formats it writes, so that its
    --help lists those and a wrong one is refused by the parser. Its members equal the
    `OutputFormat` of the same name (`OutputFormat(member)` converts)."""
    return enum.Enum("Format", {name: name for name in names}, type=str)


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


F = TypeVar("F", bound=Callable[..., Any])

PLAIN_TYPE_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "NUMBER",
    "float range": "NUMBER",
    "path": "PATH",
    "Path": "PATH",
    "bool": "",
}


def _plain_type_labels() -> None:
    """Typer >= 0.2x labels values with Python type names (`<list[Path]>`, `<str>`): show
    click's plain names (TEXT, PATH, [a|b]) instead, and nothing after an argument's own
    name. Older Typer versions have no `display_type` and need nothing."""
    from typer import core

    for cls in (core.TyperOption, core.TyperArgument):
        original = getattr(cls, "display_type", None)
        if original is None or getattr(original, "plain", False):
            continue

        def display_type(self: Any, ctx: Any, _original: Any = original) -> str:
            if isinstance(self, core.TyperArgument):
                return ""
            inner = str(_original(self, ctx)).strip("<>")
            if inner.startswith("list[") and inner.endswith("]"):
                inner = inner[5:-1]
            if "|" in inner:
                return f"[{inner}]"
            return PLAIN_TYPE_NAMES.get(inner, inner.upper())

        display_type.plain = True  # type: ignore[attr-defined]
        cls.display_type = display_type  # type: ignore[method-assign]


_plain_type_labels()


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
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except KeyboardInterrupt:
            typer.echo("pgslots: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # the last line of defence against tracebacks
            if os.environ.get("PGSLOTS_DEBUG"):
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} (set PGSLOTS_DEBUG=1 for the traceback)"
            )

    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    """After the reader closed the pipe, point stdout at /dev/null so that the interpreter's
    final flush does not raise a second BrokenPipeError (Python's documented recipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def text_width() -> int | None:
    """The width text reports are fitted to on stdout: COLUMNS when set, else the terminal's;
    None (lines as rendered) in a pipe, so that grep sees whole lines."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def emit(text: str, output: Path | None = None, *, fold: bool = False) -> None:
    """Write a rendered report to stdout or a file, secrets scrubbed. `fold`: a text report,
    fitted to the terminal's width on stdout (files keep the rendered lines)."""
    if fold and output is None:
        from pgslots.report.layout import fit

        text = fit(text, text_width())
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
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Root options."""


# The module that registers each command, so that a command starts without importing the
# others (psycopg, the lab, ...: a quarter of a second); any other first argument (help, a
# typo, a command not listed here) imports them all.
COMMAND_MODULES = {
    "events": "events",
    "audit": "audit",
    "probe": "live",
    "watch": "live",
    "lab": "lab",
    "demo": "lab",
    "diagnose": "diagnose",
    "codes": "codes",
}


def main() -> None:
    """Console-script entry point."""
    module = COMMAND_MODULES.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if module is not None:
        importlib.import_module(f"pgslots.cli.{module}")
    else:
        from pgslots.cli import audit, codes, diagnose, events, lab, live  # noqa: F401 - they register commands
    sys.exit(_run_app())


def _click_exceptions() -> Any:
    """click's exception module: Typer >= 0.26 vendors click as `typer._click`."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def _run_app() -> int:
    """Run the app with click's own error printing off, so that a usage error is one line on
    stderr and exit 2 like every other bad input (click prints a usage block of four)."""
    errors = _click_exceptions()
    try:
        result = app(standalone_mode=False, prog_name="pgslots")
    except errors.NoArgsIsHelpError as exc:  # `pgslots` alone: the help, as --help shows it
        typer.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        return EXIT_OK
    except errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "pgslots"
        message = exc.format_message().replace("Value error, ", "")
        typer.echo(f"pgslots: {message} (see: {command} --help)", err=True)
        return EXIT_USAGE
    except errors.Abort:
        typer.echo("pgslots: interrupted", err=True)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return result if isinstance(result, int) else EXIT_OK
