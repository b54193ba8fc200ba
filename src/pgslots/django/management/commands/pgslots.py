"""`manage.py pgslots probe|watch|audit`: pgslots with the project's own settings.

* `probe`: each PostgreSQL alias of DATABASES (or those given with --database), in turn, one
  read-only connection each, exactly as `pgslots probe DSN` (the same output, the same exit
  codes: 0, 1 findings at or above --fail-on, 2 bad input, 3 the server is full for the role);
* `watch`: `pgslots watch` on one alias;
* `audit`: `pgslots audit PATH` with the settings unknowns filled from the running project.

pgslots' CLI (Typer, Rich) is imported here, when the command runs, never at start-up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

EXIT_SERVER_FULL = 3


class Command(BaseCommand):
    help = (
        "pgslots with this project's settings: probe or watch its databases, audit its repository."
    )
    requires_system_checks: tuple[
        str, ...
    ] = ()  # runs even when the project's checks fail (that is when it is needed)

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{probe,watch,audit}")
        actions.required = True
        probe = actions.add_parser(
            "probe",
            help="Who holds the slots of each database server (one read-only connection per alias).",
        )
        self._live_options(probe, many=True)
        probe.add_argument(
            "--fail-on",
            default="error",
            choices=["error", "warning", "info", "never"],
            help="Exit 1 on findings at or above this severity (default error).",
        )
        watch = actions.add_parser(
            "watch", help="Watch one alias's server: a snapshot every --interval."
        )
        self._live_options(watch, many=False)
        watch.add_argument(
            "--interval", "-n", default="5", help="Seconds between snapshots (default 5)."
        )
        watch.add_argument(
            "--count", help="Stop after this many snapshots (default: until Ctrl-C)."
        )
        watch.add_argument(
            "--record", metavar="FILE", help="Append every snapshot to this JSON Lines file."
        )
        watch.add_argument(
            "--prometheus",
            metavar="HOST:PORT",
            help="Serve the latest snapshot as Prometheus metrics.",
        )
        audit = actions.add_parser(
            "audit",
            help="Audit the deployment repository, settings unknowns filled from this project.",
        )
        audit.add_argument(
            "path", nargs="?", help="The deployment repository (default: the current directory)."
        )
        audit.add_argument(
            "--assume",
            "-a",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A count neither the repository nor the settings show, e.g. web.hosts=16. Repeatable.",
        )
        audit.add_argument(
            "--format",
            "-f",
            dest="fmt",
            default="text",
            choices=["text", "json", "markdown", "sarif"],
        )
        audit.add_argument(
            "--fail-on",
            default="error",
            choices=["error", "warning", "info", "never"],
            help="Exit 1 on findings at or above this severity (default error).",
        )
        audit.add_argument(
            "--output", "-o", metavar="FILE", help="Write to this file instead of stdout."
        )

    @staticmethod
    def _live_options(parser: CommandParser, *, many: bool) -> None:
        if many:
            parser.add_argument(
                "--database",
                action="append",
                default=[],
                metavar="ALIAS",
                help="Probe this alias (repeatable; default: every PostgreSQL alias).",
            )
        else:
            parser.add_argument("--database", default="default", metavar="ALIAS")
        parser.add_argument(
            "--pgbouncer",
            metavar="DSN",
            help="pgbouncer's admin console, read too (and instead when the server is full).",
        )
        parser.add_argument(
            "--app-role",
            metavar="ROLE",
            help="The application's role: usable slots and headroom for it (default: the alias's USER).",
        )
        parser.add_argument(
            "--warn",
            default="20%",
            help="Warn when the headroom falls under this share of the usable slots (default 20%%).",
        )
        parser.add_argument(
            "--format",
            "-f",
            dest="fmt",
            default="text",
            help="text, json or markdown (watch: text or json).",
        )
        parser.add_argument(
            "--timeout",
            default="5",
            help="Seconds for connect_timeout and statement_timeout (default 5).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        code = self._audit(options) if action == "audit" else self._live(action, options)
        if code:
            sys.stdout.flush()
            raise SystemExit(code)

    # -- probe and watch: the pgslots CLI itself, with a DSN built from DATABASES -------------

    def _live(self, action: str, options: dict[str, Any]) -> int:
        from django.db import connections

        from pgslots.django.dsn import dsn_for
        from pgslots.django.read import vendor_of

        configured = connections.settings
        wanted = options["database"] if action == "probe" else [options["database"]]
        for alias in wanted:
            if alias not in configured:
                raise CommandError(
                    f"--database {alias}: no such alias in DATABASES (have: {', '.join(configured)})",
                    returncode=2,
                )
        aliases = wanted or list(configured)
        postgres = [
            a for a in aliases if vendor_of(str(configured[a].get("ENGINE") or "")) == "postgresql"
        ]
        for alias in aliases:
            if alias not in postgres:
                self.stderr.write(
                    f"pgslots: alias {alias!r} ({configured[alias].get('ENGINE')}) is not PostgreSQL: skipped"
                )
        if not postgres:
            raise CommandError("no PostgreSQL alias in DATABASES: nothing to probe", returncode=2)
        codes = [
            self._run_cli(action, alias, dsn_for(configured[alias]), options) for alias in postgres
        ]
        return EXIT_SERVER_FULL if EXIT_SERVER_FULL in codes else max(codes)

    def _run_cli(self, action: str, alias: str, dsn: str, options: dict[str, Any]) -> int:
        import pgslots.cli.live  # noqa: F401 - registers probe and watch
        from pgslots.cli import app
        from pgslots.live.connect import describe_target, parse_dsn

        self.stderr.write(f"pgslots: {action} alias {alias!r} ({describe_target(parse_dsn(dsn))})")
        self.stderr.flush()
        args = [
            action,
            dsn,
            "--warn",
            options["warn"],
            "--format",
            options["fmt"],
            "--timeout",
            options["timeout"],
        ]
        for flag in (
            "pgbouncer",
            "app_role",
            "fail_on",
            "interval",
            "count",
            "record",
            "prometheus",
        ):
            if options.get(flag) is not None:
                args += [f"--{flag.replace('_', '-')}", str(options[flag])]
        self.stdout.flush()
        try:
            app(args=args, prog_name="pgslots", standalone_mode=True)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        return 0

    # -- audit ----------------------------------------------------------------------------

    def _audit(self, options: dict[str, Any]) -> int:
        from pgslots.audit import parse_assumptions, run_audit
        from pgslots.cli import FailOn, emit, exit_code_for
        from pgslots.django.read import SettingsProblem, read_project
        from pgslots.django.runtime_audit import fill_from_runtime
        from pgslots.errors import InputError
        from pgslots.report.audit import render_json, render_markdown, render_sarif, render_text

        try:
            project = read_project()
            diagnosis = run_audit(
                Path(options["path"] or "."),
                parse_assumptions(options["assume"]),
                refine=lambda topology: fill_from_runtime(topology, project),
            )
            renderer = {
                "json": render_json,
                "markdown": render_markdown,
                "sarif": render_sarif,
            }.get(options["fmt"], render_text)
            emit(renderer(diagnosis), Path(options["output"]) if options["output"] else None)
        except (InputError, SettingsProblem) as exc:
            raise CommandError(str(exc), returncode=2) from None
        return exit_code_for(diagnosis.findings, FailOn(options["fail_on"]))
