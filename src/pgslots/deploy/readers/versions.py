"""Package versions from requirements files, pyproject.toml, poetry.lock, uv.lock, Pipfile.lock.

Only the packages that change the connection model are looked for: Django (ASGI thread per
request from 4.0, the pool from 5.1, the 5.0.0/5.0.1 leak), psycopg/psycopg2 (the pool
needs psycopg 3; retries over every address from 3.1.13), psycopg-pool, Celery (closes per
task from 5.6), gunicorn (native ASGI worker from 24), uvicorn. Lock files (exact) beat
requirements (pins or ranges); production requirements beat local/test ones. Reading a
version once found (exact, lower bound) is `pgslots.versions`.
"""

from __future__ import annotations

import json
import re

from pgslots.deploy.model import VersionFact
from pgslots.deploy.readers import RepoFiles, join
from pgslots.evidence import Evidence, Resolution

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

PACKAGES = ("django", "psycopg", "psycopg2", "psycopg-pool", "celery", "gunicorn", "uvicorn", "uvicorn-worker", "daphne", "granian", "django-celery-beat")
_REQ = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>(?:[<>=!~]=?|===)[^;#\s]+(?:\s*,\s*[<>=!~]=?[^;#\s,]+)*)?")


def normalise(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()
    return "psycopg2" if name == "psycopg2-binary" else name


def _score(path: str) -> int:
    low = path.lower()
    score = 0
    if re.search(r"prod|production|deploy|base|common|requirements\.txt$", low):
        score += 5
    if re.search(r"(^|[/._-])(local|dev|test|tests|ci|docs|lint)([/._-]|$)", low):
        score -= 10
    return score


def read_versions(repo: RepoFiles) -> list[VersionFact]:
    found: dict[str, tuple[int, VersionFact]] = {}

    def offer(rank: int, package: str, version: str, rel: str, line: int | None, text: str) -> None:
        package = normalise(package)
        if package not in PACKAGES or not version:
            return
        fact = VersionFact(package, version, Evidence(rel, line, text.strip()[:160], Resolution.LITERAL))
        if package not in found or rank > found[package][0]:
            found[package] = (rank, fact)

    for rel in repo.paths:
        name = rel.rsplit("/", 1)[-1]
        if name in ("poetry.lock", "uv.lock", "pdm.lock"):
            _lock(repo, rel, 100 + _score(rel), offer)
        elif name == "Pipfile.lock":
            _pipfile_lock(repo, rel, 100 + _score(rel), offer)
        elif name == "pyproject.toml":
            _pyproject(repo, rel, 50 + _score(rel), offer)
        elif name.endswith((".txt", ".in")) and ("requirements" in rel.lower() or name.startswith("req")):
            for number, line in enumerate(repo.lines(rel), start=1):
                if line.lstrip().startswith(("#", "-")):
                    continue
                match = _REQ.match(line)
                if match and match["spec"]:
                    spec = match["spec"].replace(" ", "")
                    exact = spec[2:] if spec.startswith("==") and "," not in spec else spec
                    offer((60 if spec.startswith("==") else 20) + _score(rel) + (5 if rel.endswith(".txt") else 0),
                          match["name"], exact, rel, number, line)
    return [fact for _, fact in sorted(found.values(), key=lambda item: item[1].package)]


def _line_of(lines: list[str], needle: str, start: int = 0) -> int | None:
    for index in range(start, len(lines)):
        if needle in lines[index]:
            return index + 1
    return None


def _lock(repo: RepoFiles, rel: str, rank: int, offer) -> None:  # noqa: ANN001
    text = repo.text(rel)
    if text is None:
        return
    try:
        data = _toml.loads(text)
    except Exception as exc:  # noqa: BLE001 - tomllib's error type differs across versions
        repo.broken(rel, None, f"invalid TOML: {exc}")
        return
    lines = text.splitlines()
    for package in data.get("package", []) or []:
        name, version = str(package.get("name", "")), str(package.get("version", ""))
        if normalise(name) in PACKAGES:
            line = _line_of(lines, f'name = "{name}"')
            offer(rank, name, version, rel, line, f'{name} = "{version}" (lock file)')


def _pipfile_lock(repo: RepoFiles, rel: str, rank: int, offer) -> None:  # noqa: ANN001
    text = repo.text(rel)
    try:
        data = json.loads(text or "{}")
    except ValueError:
        repo.broken(rel, None, "invalid JSON")
        return
    lines = (text or "").splitlines()
    for section in ("default",):
        for name, info in (data.get(section) or {}).items():
            version = str(info.get("version", "")).lstrip("=") if isinstance(info, dict) else ""
            offer(rank, name, version, rel, _line_of(lines, f'"{name}"'), f"{name}=={version} (Pipfile.lock)")


def _pyproject(repo: RepoFiles, rel: str, rank: int, offer) -> None:  # noqa: ANN001
    text = repo.text(rel)
    if text is None:
        return
    try:
        data = _toml.loads(text)
    except Exception as exc:  # noqa: BLE001
        repo.broken(rel, None, f"invalid TOML: {exc}")
        return
    lines = text.splitlines()
    for dep in (data.get("project") or {}).get("dependencies") or []:
        match = _REQ.match(str(dep))
        if match and match["spec"]:
            spec = match["spec"].replace(" ", "")
            exact = spec[2:] if spec.startswith("==") and "," not in spec else spec
            offer(rank + (10 if spec.startswith("==") else 0), match["name"], exact, rel, _line_of(lines, str(dep)[:30]), str(dep))
    poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    for name, spec in poetry.items():
        version = spec.get("version") if isinstance(spec, dict) else spec
        if isinstance(version, str):
            exact = version if re.fullmatch(r"\d+(\.\d+)*", version) else version
            offer(rank, name, exact, rel, _line_of(lines, f"{name} ="), f"{name} = {version!r}")


__all__ = ["read_versions", "join"]
