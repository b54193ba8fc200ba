"""Whether an image the repository builds can open a PostgreSQL connection at all.

A compose file often runs, beside the Django services, a program of another Python app built
from its own Dockerfile (a compute worker with its own Celery app and pyproject): it shares the
broker, the `.env` file and the settings folder's name with the Django services, but its image
installs no PostgreSQL driver, so it cannot be a client of the database. The packages an image
installs are in the dependency files its Dockerfile copies and in its own RUN lines; when the
image starts from a bare OS or Python image and none of those names a driver (nor Django),
nothing in it can connect.
"""

from __future__ import annotations

import re

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.docker import Dockerfile

_DRIVER = re.compile(r"psycopg|asyncpg|pg8000|libpq|postgres|django|sqlalchemy", re.IGNORECASE)
"""A PostgreSQL driver, the client library, or a framework that brings one."""

_DEPENDENCY_FILE = re.compile(
    r"(^|/)(requirements[^/]*\.(txt|in)|requirements/[^/]+\.(txt|in)|pyproject\.toml|uv\.lock|"
    r"poetry\.lock|pdm\.lock|Pipfile(\.lock)?|setup\.(py|cfg)|environment\.ya?ml)$"
)
_INCLUDE = re.compile(r"^\s*(-r|-c|--requirement|--constraint)[=\s]+(?P<file>\S+)", re.MULTILINE)

_BARE_BASE = re.compile(
    r"^(docker\.io/)?(library/)?(python|debian|ubuntu|alpine|almalinux|rockylinux|fedora|centos|"
    r"amazonlinux|busybox|buildpack-deps|redhat/ubi[0-9]*(-minimal)?|ghcr\.io/astral-sh/uv)(:|@|$)",
    re.IGNORECASE,
)
"""Base images that bring no Python package of their own (an OS, the official Python, uv)."""


def installed_dependency_files(repo: RepoFiles, dockerfile: Dockerfile) -> list[str]:
    """The repository's dependency files the Dockerfile copies into the image (a copied folder
    brings every one under it)."""
    sources = set(dockerfile.copies.values())
    prefixes = tuple("" if s in ("", ".") else s.rstrip("/") + "/" for s in sources)
    return sorted(
        path
        for path in repo.matching(lambda p: bool(_DEPENDENCY_FILE.search(p)))
        if path in sources or path.startswith(prefixes)
    )


def driverless_image(repo: RepoFiles, dockerfile: Dockerfile) -> list[str] | None:
    """The dependency files of an image that installs no PostgreSQL driver, or None when it
    may install one (a driver named anywhere, a base image with packages of its own, no
    dependency file copied: nothing to show what it installs)."""
    if any(
        base.lower() not in dockerfile.stages and not _BARE_BASE.search(base)
        for base in dockerfile.base_images
    ):
        return None
    if _DRIVER.search(repo.text(dockerfile.path) or ""):
        return None
    files = installed_dependency_files(repo, dockerfile)
    if not files or any(_DRIVER.search(repo.text(path) or "") for path in files):
        return None
    if any(not _includes_copied(repo, path, files) for path in files):
        return None
    return files


def _includes_copied(repo: RepoFiles, path: str, files: list[str]) -> bool:
    """Every file a requirements file pulls in (`-r base.txt`) is one of the copied files read."""
    folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    return all(
        join(folder, match["file"]) in files for match in _INCLUDE.finditer(repo.text(path) or "")
    )
