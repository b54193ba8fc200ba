"""Package and server versions: parsing a pin or a constraint, and finding a package among
the versions the audit read. One home for the rules, the remedies, the budget model and
the report, so that they all read "Django >=4.2,<5" the same way.

Reading the versions out of requirements and lock files is `deploy.readers.versions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pgslots.deploy.model import VersionFact

Version = tuple[int, ...]

_EXACT = re.compile(r"\d+(?:\.\d+)*")
_LOWER = re.compile(r"(?:>=|~=|\^|==)\s*(\d+(?:\.\d+)*)")


def parse(text: str | None) -> Version | None:
    """An exact version ("4.2.11", "==4.2.11") as a tuple; None for a range or nothing."""
    if not text:
        return None
    text = text.strip().removeprefix("==")
    return tuple(int(p) for p in text.split(".")) if _EXACT.fullmatch(text) else None


def first_number(text: str | None) -> Version | None:
    """The first version number in any text ("PostgreSQL 16.2 on x86_64" -> (16, 2))."""
    match = _EXACT.search(text or "")
    return tuple(int(p) for p in match.group(0).split(".")) if match else None


def written(fact: VersionFact) -> str:
    """The version as the user reads it: "==4.2.11" -> "4.2.11"; ranges stay as written."""
    return fact.version.removeprefix("==")


def _same_package(name: str, package: str) -> bool:
    return name.lower().replace("_", "-") == package


def find(facts: Iterable[VersionFact], *packages: str) -> VersionFact | None:
    """The first of `packages` the audit found pinned or constrained (e.g. "psycopg",
    "psycopg-binary")."""
    listed = tuple(facts)
    for package in packages:
        for fact in listed:
            if _same_package(fact.package, package):
                return fact
    return None


def exact_version(facts: Iterable[VersionFact], package: str) -> Version | None:
    """The pinned version as a tuple, or None when only a range (or nothing) is known."""
    fact = find(facts, package)
    return parse(fact.version) if fact else None


def lower_bound(facts: Iterable[VersionFact], package: str) -> Version | None:
    """The lowest version a range allows (`>=5.1` -> (5, 1)), or the exact pin."""
    fact = find(facts, package)
    if fact is None:
        return None
    exact = parse(fact.version)
    if exact:
        return exact
    match = _LOWER.search(fact.version)
    return tuple(int(p) for p in match[1].split(".")) if match else None
