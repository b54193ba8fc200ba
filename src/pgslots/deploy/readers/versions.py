"""Package versions from requirements files, pyproject.toml, poetry.lock, uv.lock, Pipfile.lock.

Only the packages that change the connection model are looked for: Django (ASGI thread per
request from 4.0, the pool from 5.1, the 5.0.0/5.0.1 leak), psycopg/psycopg2 (the pool
needs psycopg 3; retries over every address from 3.1.13), psycopg-pool, Celery (closes per
task from 5.6), gunicorn (native ASGI worker from 24), uvicorn.

Which statement wins: a lock file (exact), then an exact pin (`Django==6.0.8`) wherever it
is, then a range (`Django==6.0.*`, `>=5.1`); within each, production files beat the others.
Documentation, lint and test requirements (`docs/requirements.txt`, PEP 735 groups named
`docs`/`dev`/`test`) are not what the application runs, and are not read.
Reading a version once found (exact, lower bound) is `pgslots.versions`.
"""

from __future__ import annotations

import json
import re
import sys

from pgslots.deploy.model import VersionFact
from pgslots.deploy.readers import RepoFiles, join
from pgslots.evidence import Evidence, Resolution

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.10
    import tomli as _toml

PACKAGES = (
    "django",
    "psycopg",
    "psycopg2",
    "psycopg-pool",
    "celery",
    "gunicorn",
    "uvicorn",
    "uvicorn-worker",
    "daphne",
    "granian",
    "django-celery-beat",
)
_REQ = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>(?:[<>=!~]=?|===)[^;#\s]+(?:\s*,\s*[<>=!~]=?[^;#\s,]+)*)?"
)


def normalise(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()
    return "psycopg2" if name == "psycopg2-binary" else name


def _score(path: str) -> int:
    low = path.lower()
    score = 0
    if re.search(r"prod|production|deploy|base|common|requirements\.txt$", low):
        score += 5
    if re.search(r"(^|[/._-])(local|dev|test|tests|ci)([/._-]|$)", low):
        score -= 10
    return score


_NOT_THE_APP = re.compile(
    r"(^|[/._-])(docs?|documentation|sphinx|mkdocs|lint|linting|typing|mypy|pre-commit)([/._-]|$)"
)
"""Requirement files and dependency groups for the documentation or the tooling, not the application."""

_NON_PRODUCTION_GROUPS = re.compile(
    r"^(dev|develop|development|test|tests|testing|ci|local|lint|docs?|typing|mypy)([-_].*)?$"
)

LOCK, PIN, RANGE = 300, 200, 100
"""Ranks: a lock file's exact version > an exact pin in any file > a range."""


def _is_pin(spec: str) -> bool:
    return bool(re.fullmatch(r"===?\d+(\.\d+)*([a-z]+\d*)?", spec))


def read_versions(repo: RepoFiles) -> list[VersionFact]:
    found: dict[str, tuple[int, VersionFact]] = {}

    def offer(rank: int, package: str, version: str, rel: str, line: int | None, text: str) -> None:
        package = normalise(package)
        if package not in PACKAGES or not version:
            return
        fact = VersionFact(
            package, version, Evidence(rel, line, text.strip()[:160], Resolution.LITERAL)
        )
        if package not in found or rank > found[package][0]:
            found[package] = (rank, fact)

    for rel in repo.paths:
        name = rel.rsplit("/", 1)[-1]
        if _NOT_THE_APP.search(rel.lower()):
            continue
        if name in ("poetry.lock", "uv.lock", "pdm.lock"):
            _lock(repo, rel, LOCK + _score(rel), offer)
        elif name == "Pipfile.lock":
            _pipfile_lock(repo, rel, LOCK + _score(rel), offer)
        elif name == "pyproject.toml":
            _pyproject(repo, rel, _score(rel), offer)
        elif name.endswith((".txt", ".in")) and (
            "requirements" in rel.lower() or name.startswith("req")
        ):
            for number, line in enumerate(repo.lines(rel), start=1):
                if line.lstrip().startswith(("#", "-")):
                    continue
                match = _REQ.match(line)
                if match and match["spec"]:
                    spec = match["spec"].replace(" ", "")
                    pinned = _is_pin(spec)
                    offer(
                        (PIN if pinned else RANGE)
                        + _score(rel)
                        + (5 if rel.endswith(".txt") else 0),
                        match["name"],
                        spec.lstrip("=") if pinned else spec,
                        rel,
                        number,
                        line,
                    )
    return [fact for _, fact in sorted(found.values(), key=lambda item: item[1].package)]


def _line_of(lines: list[str], needle: str, start: int = 0) -> int | None:
    for index in range(start, len(lines)):
        if needle in lines[index]:
            return index + 1
    return None


def _lock(repo: RepoFiles, rel: str, rank: int, offer) -> None:
    text = repo.text(rel)
    if text is None:
        return
    try:
        data = _toml.loads(text)
    except Exception as exc:  # noqa: BLE001 - tomllib's error type differs across versions
        repo.broken(rel, None, f"invalid TOML: {exc}")
        return
    entries = _package_entries(text.splitlines())
    for package in data.get("package", []) or []:
        name, version = str(package.get("name", "")), str(package.get("version", ""))
        if normalise(name) in PACKAGES:
            offer(
                rank,
                name,
                version,
                rel,
                entries.get(normalise(name)),
                f'{name} = "{version}" (lock file)',
            )


def _package_entries(lines: list[str]) -> dict[str, int]:
    """The line of each `[[package]]` entry's own `name = "..."` (not a dependency list's mention)."""
    out: dict[str, int] = {}
    in_header = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == "[[package]]":
            in_header = True
            continue
        if in_header:
            match = re.fullmatch(r'name\s*=\s*"([^"]+)"', stripped)
            if match:
                out.setdefault(normalise(match[1]), number)
                in_header = False
            elif stripped.startswith("["):
                in_header = False
    return out


def _pipfile_lock(repo: RepoFiles, rel: str, rank: int, offer) -> None:
    text = repo.text(rel)
    try:
        data = json.loads(text or "{}")
    except ValueError:
        repo.broken(rel, None, "invalid JSON")
        return
    lines = (text or "").splitlines()
    start = _line_of(lines, '"default"') or 1
    for section in ("default",):
        for name, info in (data.get(section) or {}).items():
            version = str(info.get("version", "")).lstrip("=") if isinstance(info, dict) else ""
            offer(
                rank,
                name,
                version,
                rel,
                _line_of(lines, f'"{name}": {{', start - 1)
                or _line_of(lines, f'"{name}"', start - 1),
                f"{name}=={version} (Pipfile.lock)",
            )


def _pyproject(repo: RepoFiles, rel: str, score: int, offer) -> None:
    text = repo.text(rel)
    if text is None:
        return
    try:
        data = _toml.loads(text)
    except Exception as exc:  # noqa: BLE001
        repo.broken(rel, None, f"invalid TOML: {exc}")
        return
    lines = text.splitlines()
    requirements = list((data.get("project") or {}).get("dependencies") or [])
    # PEP 735 groups that run the application (`server`, `prod`), not `dev`/`test`/`docs`.
    for group, items in (data.get("dependency-groups") or {}).items():
        if not _NON_PRODUCTION_GROUPS.match(str(group).lower()) and not _NOT_THE_APP.search(
            str(group).lower()
        ):
            requirements.extend(item for item in items or [] if isinstance(item, str))
    for dep in requirements:
        match = _REQ.match(str(dep))
        if match and match["spec"]:
            spec = match["spec"].replace(" ", "")
            pinned = _is_pin(spec)
            offer(
                (PIN if pinned else RANGE) + score + 10,
                match["name"],
                spec.lstrip("=") if pinned else spec,
                rel,
                _line_of(lines, f'"{dep}"') or _line_of(lines, str(dep)[:30]),
                str(dep),
            )
    poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    for name, spec in poetry.items():
        version = spec.get("version") if isinstance(spec, dict) else spec
        if isinstance(version, str):
            pinned = bool(re.fullmatch(r"=?=?\d+(\.\d+)*", version))
            offer(
                (PIN if pinned else RANGE) + score,
                name,
                version.lstrip("=") if pinned else version,
                rel,
                _line_of(lines, f"{name} ="),
                f"{name} = {version!r}",
            )


__all__ = ["join", "read_versions"]
