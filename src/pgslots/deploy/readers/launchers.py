"""Python launchers: the project's own programs that start its servers themselves.

`python jms start all` runs a Python file of the repository; `sentry run web` runs a console
script the project declares (`[project.scripts]`, Poetry's `[tool.poetry.scripts]`,
setup.cfg's or setup.py's `console_scripts`). Either one decides in Python code, at run time,
which servers start and how many workers they get: the audit reads configuration, it does
not follow a program's control flow, so such a process is reported as an unknown group with
this evidence rather than left out.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import sys
from collections.abc import Callable

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.commands import ONE_SHOT_COMMANDS, Launch, parse_launch
from pgslots.deploy.readers.envfiles import Env

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.10
    import tomli as _toml

_PYTHON = re.compile(r"python[0-9.]*")
_CONSOLE_SCRIPT = re.compile(
    r"""["']\s*(?P<name>[A-Za-z0-9][\w.-]*)\s*=\s*(?P<target>[\w.]+(?::[\w.]+)?)\s*["']"""
)


@dataclasses.dataclass(frozen=True)
class Launcher:
    program: str  # `ctl` (a file), `relay` (a console script)
    defined_in: (
        str  # the repository file: the script itself, or where the console script is declared
    )
    line: int | None
    why: str


def find_launcher(
    argv: list[str], repo: RepoFiles, locate: Callable[[str], str | None]
) -> Launcher | None:
    """The launcher `argv` (already unwrapped) runs, if it is one: `python FILE ...` with FILE
    in the repository, or a console script the project declares."""
    if not argv:
        return None
    head = argv[0].rsplit("/", 1)[-1]
    if _PYTHON.fullmatch(head):
        rest = [w for w in argv[1:] if not w.startswith("-")]
        if not rest or "-c" in argv[1:2]:
            return None
        path = locate(rest[0])
        if path is None:
            return None
        return Launcher(
            rest[0],
            path,
            1,
            f"`{' '.join(argv)[:60]}` runs {path}, a Python program of the project",
        )
    scripts = console_scripts(repo)
    if head in scripts:
        path, line, target = scripts[head]
        return Launcher(
            head,
            path,
            line,
            f"`{' '.join(argv)[:60]}` runs `{head}`, the project's console script ({target}, {path}:{line})",
        )
    return None


def console_scripts(repo: RepoFiles) -> dict[str, tuple[str, int | None, str]]:
    """name -> (declaring file, line, `module:function`) over pyproject.toml, setup.cfg and setup.py
    (read once per repository: every line of every start script asks)."""
    cached = getattr(repo, "_console_scripts", None)
    if cached is None:
        cached = _read_console_scripts(repo)
        repo._console_scripts = cached  # type: ignore[attr-defined]
    return cached


def _read_console_scripts(repo: RepoFiles) -> dict[str, tuple[str, int | None, str]]:
    found: dict[str, tuple[str, int | None, str]] = {}
    for rel in repo.named("pyproject.toml"):
        text = repo.text(rel) or ""
        try:
            data = _toml.loads(text)
        except Exception:  # noqa: BLE001 - a broken pyproject is reported by the versions reader
            continue
        tables = [
            (data.get("project") or {}).get("scripts") or {},
            ((data.get("tool") or {}).get("poetry") or {}).get("scripts") or {},
        ]
        for table in tables:
            for name, target in table.items():
                found.setdefault(str(name), (rel, _key_line(text, str(name)), str(target)))
    for rel in repo.named("setup.cfg"):
        text = repo.text(rel) or ""
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        if parser.has_option("options.entry_points", "console_scripts"):
            for item in parser.get("options.entry_points", "console_scripts").splitlines():
                name, sep, target = item.partition("=")
                if sep:
                    found.setdefault(
                        name.strip(), (rel, _key_line(text, name.strip()), target.strip())
                    )
    for rel in repo.named("setup.py"):
        text = repo.text(rel) or ""
        if "console_scripts" not in text:
            continue
        for match in _CONSOLE_SCRIPT.finditer(text[text.index("console_scripts") :]):
            found.setdefault(match["name"], (rel, _line(text, match[0]), match["target"]))
    return found


def _line(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _key_line(text: str, key: str) -> int | None:
    """The line that declares `key = ...` (TOML or ini)."""
    pattern = re.compile(r"""^\s*["']?""" + re.escape(key) + r"""["']?\s*=""")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def manage_equivalent(program: list[str], repo: RepoFiles) -> bool:
    """`python -m ephios run_periodic`, `weblate migrate`: the project's own entry point that
    runs Django's `execute_from_command_line` (a manage.py under another name), so its first
    argument is a management command."""
    if not program:
        return False
    head = program[0].rsplit("/", 1)[-1]
    if not re.fullmatch(r"[A-Za-z_][\w-]*", head):
        return False
    # through the name index, not a walk of every path: this is asked for every line of every script
    files = [
        p
        for p in repo.named("__main__.py")
        if p == f"{head}/__main__.py" or p.endswith(f"/{head}/__main__.py")
    ]
    script = console_scripts(repo).get(head)
    if script is not None:
        module = script[2].split(":", 1)[0].replace(".", "/")
        last = module.rsplit("/", 1)[-1]
        files += [
            p
            for p in repo.named(f"{last}.py", "__init__.py")
            if p.endswith((f"{module}.py", f"{module}/__init__.py"))
        ]
    return any("execute_from_command_line" in (repo.text(path) or "") for path in files[:4])


def installed_manage(launch: Launch, env: Env, repo: RepoFiles) -> Launch | None:
    """`weblate check --deploy` with DJANGO_SETTINGS_MODULE=weblate.settings_docker: a Django
    project installed as a package (not in the repository) ships its manage.py as a console
    script named after its package; with a Django management command as its first argument it
    is read as `manage.py check --deploy`."""
    head = launch.argv[0].rsplit("/", 1)[-1] if launch.argv else ""
    module = env.value("DJANGO_SETTINGS_MODULE") or ""
    command = launch.argv[1] if len(launch.argv) > 1 else ""
    if (
        not head
        or head != module.split(".", 1)[0]
        or command not in ONE_SHOT_COMMANDS
        or repo.has(f"{head}/__init__.py")
        or any(p.endswith(f"/{head}/__init__.py") for p in repo.named("__init__.py"))
    ):
        return None
    return dataclasses.replace(
        parse_launch(["manage.py", *launch.argv[1:]]),
        inline_env=launch.inline_env,
        pgbouncer_wrapper=launch.pgbouncer_wrapper,
    )
