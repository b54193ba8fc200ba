"""Readers of a deployment repository, one module per kind of configuration file.

Every reader is static: it parses text (Python by `ast`, YAML by the safe loader, dotenv,
shell words) and never imports or executes anything from the audited repository. Each fact
it returns carries `Evidence` (path relative to the repository root, 1-based line, the
quoted text with secrets masked).

`RepoFiles` walks the tree once, skipping what is never deployment configuration (VCS
folders, virtualenvs, `node_modules`, caches, build output), and hands each reader the
files it asks for. A file that cannot be read becomes a read error (reported as a finding),
never an exception.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from pgslots.evidence import Evidence
from pgslots.redact import REDACTOR, redact_dsn

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "node_modules",
        "bower_components",
        "__pycache__",
        ".venv",
        "venv",
        ".virtualenv",
        "virtualenv",
        ".tox",
        ".nox",
        ".eggs",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "site-packages",
        "dist-packages",
        "build",
        "dist",
        ".next",
        ".nuxt",
        ".cache",
        ".idea",
        ".vscode",
        "htmlcov",
        "staticfiles",
        ".terraform",
        ".serverless",
        "vendor",
    }
)
"""Folder names never descended into: they hold no deployment configuration of the project."""

MAX_FILE_BYTES = 2 * 1024 * 1024
"""Configuration files are small; anything bigger is data or generated, and not read."""


@dataclasses.dataclass
class RepoFiles:
    """The repository's files (relative POSIX paths) and a cache of their text."""

    root: Path
    paths: list[str]
    read_errors: list[Evidence] = dataclasses.field(default_factory=list)
    yaml_tags: list[Evidence] = dataclasses.field(
        default_factory=list
    )  # custom YAML tags (`!vault`, `!Ref`) read as plain values
    _text: dict[str, str | None] = dataclasses.field(default_factory=dict)
    _by_name: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    _lines: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> RepoFiles:
        """Walk `root` once. Symlinked folders are not followed (they may loop or leave the repo)."""
        files: list[str] = []
        errors: list[Evidence] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            folder = root / rel if rel else root
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        name = entry.name
                        child = f"{rel}/{name}" if rel else name
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                if _skip_dir(name, entry.path):
                                    continue
                                stack.append(child)
                            elif entry.is_file():
                                files.append(child)
                        except OSError as exc:
                            errors.append(
                                Evidence(
                                    child, None, f"could not read {child}: {exc.strerror or exc}"
                                )
                            )
            except OSError as exc:
                errors.append(
                    Evidence(
                        rel or ".", None, f"could not read {rel or '.'}: {exc.strerror or exc}"
                    )
                )
        files.sort()
        repo = cls(root=root, paths=files, read_errors=errors)
        for path in files:
            repo._by_name.setdefault(PurePosixPath(path).name, []).append(path)
        publish_names(root, files)
        return repo

    def named(self, *names: str) -> list[str]:
        """Files with exactly one of these base names."""
        found: list[str] = []
        for name in names:
            found.extend(self._by_name.get(name, ()))
        return sorted(set(found))

    def matching(self, predicate: Callable[[str], bool]) -> list[str]:
        return [p for p in self.paths if predicate(p)]

    def has(self, rel: str) -> bool:
        return rel in self._path_set()

    def is_dir(self, rel: str) -> bool:
        """A folder of the repository ("" and "." are the root)."""
        rel = rel.strip("/")
        if rel in ("", "."):
            return True
        folders = getattr(self, "_folders", None)
        if folders is None:
            folders = {p.rsplit("/", i)[0] for p in self.paths for i in range(1, p.count("/") + 1)}
            object.__setattr__(self, "_folders", folders)
        return rel in folders

    def _path_set(self) -> set[str]:
        cached = getattr(self, "_set", None)
        if cached is None:
            cached = set(self.paths)
            object.__setattr__(self, "_set", cached)
        return cached

    def text(self, rel: str) -> str | None:
        """The file's text, or None (with a read error recorded once) when it cannot be read."""
        if rel in self._text:
            return self._text[rel]
        path = self.root / rel
        content: str | None
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                self.read_errors.append(
                    Evidence(rel, None, f"could not read {rel}: larger than 2 MiB, skipped")
                )
                content = None
            else:
                raw = path.read_bytes()
                try:
                    content = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    content = raw.decode("latin-1")
        except OSError as exc:
            self.read_errors.append(
                Evidence(rel, None, f"could not read {rel}: {exc.strerror or exc}")
            )
            content = None
        self._text[rel] = content
        return content

    def text_uncached(self, rel: str) -> str | None:
        """The file's text without keeping it: for scans over many files (documentation) whose
        text is needed once; a file already read comes from the cache."""
        if rel in self._text:
            return self._text[rel]
        content = self.text(rel)
        self._text.pop(rel, None)
        return content

    def lines(self, rel: str) -> list[str]:
        """The file's lines (split once: evidence quotes a line of the same file many times)."""
        if rel not in self._lines:
            text = self.text(rel)
            self._lines[rel] = text.splitlines() if text is not None else []
        return self._lines[rel]

    def quote(self, rel: str, line: int | None) -> str:
        """The source line as evidence text: stripped, DSN passwords masked."""
        if line is None:
            return ""
        lines = self.lines(rel)
        if 0 < line <= len(lines):
            return redact_dsn(lines[line - 1].strip())[:200]
        return ""

    def yaml_tag(self, rel: str, line: int, tag: str, written: str = "") -> None:
        """A custom YAML tag read as the plain value it wraps (its real value is filled in at deploy time)."""
        evidence = Evidence(rel, line, tag)  # never the value: a vault blob or a secret's reference
        if evidence not in self.yaml_tags:
            self.yaml_tags.append(evidence)

    def broken(self, rel: str, line: int | None, why: str) -> None:
        """Record that a file was read but could not be understood."""
        self.read_errors.append(Evidence(rel, line, f"could not read {rel}: {why}"))


def publish_names(root: Path, files: list[str]) -> None:
    """The repository's own folder and file names (and module names) must stay readable in
    the report even when a weak example password equals one of them (see `Redactor`)."""
    names: set[str] = set(Path(root).resolve().parts) | set(Path(root).parts)
    for path in files:
        for part in path.split("/"):
            names.add(part)
            names.add(part.split(".", 1)[0])
    REDACTOR.publish(*names)


BUILD_RECIPES = ("Dockerfile", "Containerfile")
"""A `build` folder holding one of these is the image's build recipe (`container/build/
Containerfile`), committed source, not build output."""


def _skip_dir(name: str, full: str) -> bool:
    if name == "build" and any(os.path.isfile(os.path.join(full, f)) for f in BUILD_RECIPES):
        return False
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    # A virtualenv under any name is recognised by its marker file.
    return os.path.exists(os.path.join(full, "pyvenv.cfg"))


def walk_up(rel: str) -> Iterator[str]:
    """The folders containing `rel`, nearest first, ending with "" (the root)."""
    parent = PurePosixPath(rel).parent
    while True:
        yield "" if str(parent) == "." else str(parent)
        if str(parent) in ("", "."):
            return
        parent = parent.parent


def join(folder: str, name: str) -> str:
    """A repo-relative path from a folder and a relative name, normalised (no `..` above root)."""
    parts: list[str] = [p for p in folder.split("/") if p] if folder else []
    for piece in name.replace("\\", "/").split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if parts:
                parts.pop()
            continue
        parts.append(piece)
    return "/".join(parts)
