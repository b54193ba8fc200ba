"""The `pgslots` system checks: `runtime_findings` as Django check messages.

Ids map one-to-one to the PGS codes: `pgslots.W003` is PGS003, `pgslots.E017` is PGS017.
The letter is the Django level: Error (`E`) only for settings Django itself refuses at the
first connection (a pool before Django 5.1, a pool without psycopg 3, a pool with
CONN_MAX_AGE != 0), since an Error stops `migrate` and `runserver`; every other PGS error
or warning is a Warning (`W`), which `check --fail-level WARNING` (or `--deploy` in CI)
turns into a failure; PGS info is Info (`I`). `pgslots.E000` is a malformed PGSLOTS setting.

This module is imported by `AppConfig.ready()`, so it imports only Django's check framework;
the rules are imported when the check runs.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

TAG = "pgslots"
DJANGO_REFUSES = frozenset({"PGS004", "PGS016", "PGS017"})


def level_letter(code: str, severity: str) -> str:
    """The Django level of a PGS code: "W" for PGS003 makes the id pgslots.W003."""
    if code in DJANGO_REFUSES:
        return "E"
    return "I" if severity == "info" else "W"


_LEVELS = {"E": checks.Error, "W": checks.Warning, "I": checks.Info}


def message_of(finding: Any) -> checks.CheckMessage:
    """A Django check message for a `Finding`: its code in the message, its hint as the hint."""
    letter = level_letter(finding.code, finding.severity.value)
    setting = (
        finding.evidence[0].text if finding.evidence else None
    )  # e.g. DATABASES['default']['CONN_MAX_AGE'] = 60
    return _LEVELS[letter](
        f"{finding.code} {finding.title}: {finding.message}",
        hint=finding.hint,
        obj=setting,
        id=f"pgslots.{letter}{finding.code[3:]}",
    )


def pgslots_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The connection-slot risks of the running project's settings (no connection opened)."""
    from pgslots.django.read import SettingsProblem, read_project
    from pgslots.rules.runtime import runtime_findings

    try:
        project = read_project()
    except SettingsProblem as problem:
        return [
            checks.Error(
                str(problem), hint="See docs/django.md for the PGSLOTS setting.", id="pgslots.E000"
            )
        ]
    return [message_of(finding) for finding in runtime_findings(project)]


def register() -> None:
    checks.register(pgslots_check, TAG)
