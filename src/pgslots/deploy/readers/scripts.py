"""Shell start scripts (`compose/production/django/start`, `entrypoint.sh`, `bin/start-web`).

A script is read, not run: its variable assignments (`export X=...`, `X="${X:-4}"`, with
whether they sit inside an `if`), the server commands it launches (with their line), and
whether it hands over to its arguments (`exec "$@"`, as entrypoints do). Heredoc bodies
(`python << END ... END`) are skipped: they are another language.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.commands import Expanded, Launch, expand, launch_from_words, split_words
from pgslots.deploy.readers.envfiles import MISSING_ENV, UNKNOWN_VALUE, Env, EnvValue
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value

_ASSIGN = re.compile(r"^(?:export\s+|readonly\s+|declare\s+(?:-x\s+)?|local\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.S)
_DEFAULT_ASSIGN = re.compile(r"^:\s+\"?\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?=(?P<value>[^}]*)\}\"?\s*$")
_HEREDOC = re.compile(r"<<-?\s*['\"]?(?P<tag>[A-Za-z_][A-Za-z0-9_]*)['\"]?")
_HANDOVER = re.compile(r"""^(exec\s+)?["']?\$(@|\{@\}|\*)["']?\s*$""")


@dataclasses.dataclass(frozen=True)
class Assignment:
    name: str
    raw: str  # the right-hand side as written
    line: int
    conditional: bool  # inside an if/case/loop: may not run


@dataclasses.dataclass(frozen=True)
class ScriptLaunch:
    launch: Launch
    line: int
    background: bool = False  # `celery -A app worker &`: runs beside the script's main process


@dataclasses.dataclass(frozen=True)
class Script:
    path: str
    assignments: tuple[Assignment, ...]
    launches: tuple[ScriptLaunch, ...]
    hands_over: bool  # ends with exec "$@"
    calls: tuple[tuple[str, int], ...] = ()  # other scripts it runs: (word, line)


def logical_lines(text: str, dockerfile: bool = False) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined and heredocs dropped.
    In a Dockerfile, comment lines inside a continued instruction are removed first, as
    Docker does (`ENV A=1 \\` / `# B=2 \\` / `C=3` sets A and C)."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start = index + 1
        line = lines[index]
        index += 1
        while index < len(lines) and (line.rstrip().endswith("\\") or not dockerfile and _open_quote(line)):
            if dockerfile and lines[index].lstrip().startswith("#"):
                index += 1
                continue
            if line.rstrip().endswith("\\"):
                line = line.rstrip()[:-1] + " " + lines[index].strip()
            else:  # a quoted value that goes on over the next line: `X="--a\n  --b"`
                line = line + "\n" + lines[index]
            index += 1
        heredoc = _HEREDOC.search(line)
        if heredoc and "<<<" not in line:
            tag = heredoc["tag"]
            while index < len(lines) and lines[index].strip() != tag:
                index += 1
            index += 1
            line = line[: heredoc.start()]
        out.append((start, line))
    return out


def _open_quote(line: str) -> bool:
    """Whether a shell line ends inside a quoted string (comments and escapes considered)."""
    quote = ""
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            return False
    return bool(quote)


def read_script(repo: RepoFiles, rel: str) -> Script | None:
    text = repo.text(rel)
    if text is None:
        return None
    assignments: list[Assignment] = []
    launches: list[ScriptLaunch] = []
    calls: list[tuple[str, int]] = []
    depth = 0
    hands_over = False
    for number, raw in logical_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split(None, 1)[0]
        if first in ("if", "case", "for", "while", "until"):
            depth += 1
            # `if [ -z "$X" ]; then export X=1; fi` on one line
            for piece in re.split(r";\s*(?:then|do)\s+", line)[1:]:
                _take_assignment(piece.split(";")[0].strip(), number, True, assignments)
            if re.search(r"\bfi\s*$|\bdone\s*$|\besac\s*$", line):
                depth -= 1
            continue
        if first in ("fi", "done", "esac"):
            depth = max(0, depth - 1)
            continue
        if first in ("then", "else", "elif", "do"):
            line = line.split(None, 1)[1] if " " in line else ""
            if not line:
                continue
        if _HANDOVER.match(line):
            hands_over = True
            continue
        if _DEFAULT_ASSIGN.match(line):
            match = _DEFAULT_ASSIGN.match(line)
            assert match
            assignments.append(Assignment(match["name"], "${%s:-%s}" % (match["name"], match["value"]), number, True))
            continue
        if _take_assignment(line, number, depth > 0, assignments):
            continue
        words = split_words(line)
        if not words:
            continue
        launch = launch_from_words(words)
        if launch.program != "other":
            launches.append(ScriptLaunch(launch, number, background=words[-1] == "&"))
        elif words[0] in (".", "source", "bash", "sh", "exec") and len(words) > 1:
            calls.append((words[1], number))
        elif words[0].startswith(("/", "./")) and not words[0].startswith("/usr/"):
            calls.append((words[0], number))
    return Script(rel, tuple(assignments), tuple(launches), hands_over, tuple(calls))


def _take_assignment(line: str, number: int, conditional: bool, out: list[Assignment]) -> bool:
    match = _ASSIGN.match(line)
    if not match or " " in match["value"].strip().strip("'\"") and not match["value"].strip().startswith(("'", '"', "$")):
        return False
    value = match["value"].strip()
    words = split_words(value) if value else [""]
    out.append(Assignment(match["name"], words[0] if words else "", number, conditional))
    return True


def apply_assignments(script: Script, env: Env, repo: RepoFiles) -> Env:
    """The environment after the script's assignments, as far as they can be known.

    An assignment inside an `if` is taken only when the variable is not already set (the
    common `if [ -z "${X:-}" ]; then export X=...` fallback); one whose value cannot be
    known (`$(nproc)`) records the variable as unknown at that line.
    """
    result = env.overlay({})
    incomplete = env.get(MISSING_ENV) is not None
    for item in script.assignments:
        if item.conditional and result.get(item.name) is not None:
            continue
        if item.conditional and incomplete and item.name.isupper():
            # `if [ -z "$X" ]; then X=default`: X may well be set by the env file we cannot see.
            note = f"set here only when unset; it may be set in {env.value(MISSING_ENV)} (not in the repository)"
            result.set(EnvValue(item.name, UNKNOWN_VALUE, Evidence(script.path, item.line, repo.quote(script.path, item.line), Resolution.LITERAL, note)))
            continue
        expanded: Expanded = expand(item.raw, result, symbolic="://" in item.raw)
        quoted = repo.quote(script.path, item.line)
        if expanded.value is None:
            # Set, but to something only the running host knows (`$(nproc)`).
            note = "computed at run time: " + ", ".join(expanded.missing)
            result.set(EnvValue(item.name, UNKNOWN_VALUE, Evidence(script.path, item.line, quoted, Resolution.LITERAL, note)))
            continue
        REDACTOR.register_named(item.name, expanded.value)
        resolution = Resolution.ENV_DEFAULT if expanded.defaulted else Resolution.LITERAL
        note = f"{item.name}={redact_value(item.name, expanded.value)}"
        result.set(EnvValue(item.name, expanded.value, Evidence(script.path, item.line, quoted, resolution, note),
                            template=item.raw if expanded.used else None))
    return result
