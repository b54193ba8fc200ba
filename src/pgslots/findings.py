"""Findings: stable codes, a severity, an explanation and a hint, like Django's system checks.

Each rule module declares its checks once with `define(...)`; the registry is what
`pgslots codes` lists and what the README's table of codes is checked against. A code is
never reused for another meaning; a retired one stays in the registry marked as such.

Code ranges: PGS001-099 repository/audit, PGS100-199 events, PGS200-299 live server and
pgbouncer, PGS300-399 lab, PGS400-499 diagnosis (joined evidence).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from pgslots.evidence import Evidence
from pgslots.remedy import RemedySpec


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


@dataclasses.dataclass(frozen=True)
class Check:
    """The definition of a finding code."""

    code: str
    title: str
    severity: Severity
    hint: str
    area: str  # "audit", "events", "live", "lab", "diagnose"
    retired: bool = False

    def finding(
        self,
        message: str,
        *,
        evidence: Iterable[Evidence] = (),
        remedies: Iterable[RemedySpec] = (),
        severity: Severity | None = None,
        hint: str | None = None,
    ) -> Finding:
        """A finding of this kind, with what is specific to this occurrence."""
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            title=self.title,
            message=message,
            hint=hint or self.hint,
            evidence=tuple(evidence),
            remedies=tuple(remedy.code for remedy in remedies),
        )


@dataclasses.dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    title: str
    message: str
    hint: str
    evidence: tuple[Evidence, ...] = ()
    remedies: tuple[str, ...] = ()  # codes of `RemedySpec`s (pgslots.remedy.REMEDIES)


REGISTRY: dict[str, Check] = {}


def define(code: str, title: str, severity: Severity, hint: str, *, area: str) -> Check:
    """Declare a finding code. Import-time only; a duplicate code is a programming error."""
    if code in REGISTRY:
        raise ValueError(f"finding code {code} defined twice")
    if not (len(code) == 6 and code.startswith("PGS") and code[3:].isdigit()):
        raise ValueError(f"finding code {code!r} is not PGS + three digits")
    check = Check(code, title, severity, hint, area)
    REGISTRY[code] = check
    return check


def at_or_above(findings: Iterable[Finding], threshold: Severity) -> list[Finding]:
    return [f for f in findings if f.severity.rank >= threshold.rank]
