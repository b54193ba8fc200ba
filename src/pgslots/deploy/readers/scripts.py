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
    guard: tuple[str, ...] | None = None  # the values of "$1" that reach it ("*": the default branch)


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


_ARG_TEST = re.compile(r"""^(?:el)?if\s+\[\[?\s*["']?\$\{?1\}?["']?\s*==?\s*["']?([\w.:-]+)["']?\s*\]\]?""")
_ARG_CASE = re.compile(r"""^case\s+["']?\$\{?1\}?["']?\s+in\b""")
_CASE_PATTERN = re.compile(r"""^\(?\s*((?:["']?[\w.*:-]+["']?)(?:\s*\|\s*["']?[\w.*:-]+["']?)*)\s*\)\s*(.*)$""")


def read_script(repo: RepoFiles, rel: str) -> Script | None:
    """Assignments, launches and calls of a shell script. Entrypoints that dispatch on their
    first argument (`if [[ "$1" == "worker" ]]`, `case "$1" in worker) ...`) have each launch
    tagged with the argument values that reach it (`ScriptLaunch.guard`)."""
    text = repo.text(rel)
    if text is None:
        return None
    assignments: list[Assignment] = []
    launches: list[ScriptLaunch] = []
    calls: list[tuple[str, int]] = []
    frames: list[list] = []  # [kind, guard]: "if"/"case"/"loop"; guard = values of $1 that enter it
    hands_over = False
    for number, raw in logical_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split(None, 1)[0]
        if first in ("if", "case", "for", "while", "until"):
            arg = _ARG_TEST.match(line)
            kind = "case1" if _ARG_CASE.match(line) else ("if" if first == "if" else "loop")
            frames.append([kind, (arg.group(1),) if arg else None])
            # `if [ -z "$X" ]; then export X=1; fi` on one line
            for piece in re.split(r";\s*(?:then|do)\s+", line)[1:]:
                _take_assignment(piece.split(";")[0].strip(), number, True, assignments)
            if re.search(r"\bfi\s*$|\bdone\s*$|\besac\s*$", line):
                frames.pop()
            continue
        if first in ("fi", "done", "esac"):
            if frames:
                frames.pop()
            continue
        if first == "elif" and frames:
            arg = _ARG_TEST.match(line)
            frames[-1][1] = (arg.group(1),) if arg else None
        if first == "else" and frames and frames[-1][0] == "if":
            frames[-1][1] = ("*",) if frames[-1][1] else None  # the default branch of a dispatch
        if frames and frames[-1][0] == "case1":
            pattern = _CASE_PATTERN.match(line)
            if pattern and not line.startswith(("if ", "[")):
                frames[-1][1] = tuple(p.strip().strip("'\"") for p in pattern.group(1).split("|"))
                line = pattern.group(2).strip()
            ends_pattern = line.endswith(";;")  # `worker) exec celery ... ;;` on one line
            line = line[:-2].strip() if ends_pattern else line
            if not line:
                if ends_pattern:
                    frames[-1][1] = None
                continue
        else:
            ends_pattern = False
        if first in ("then", "else", "elif", "do"):
            line = line.split(None, 1)[1] if " " in line else ""
            if not line:
                continue
        guard = next((frame[1] for frame in reversed(frames) if frame[1]), None)
        conditional = bool(frames)
        _read_line(line, number, conditional, guard, assignments, launches, calls)
        if line.strip() and _HANDOVER.match(line.strip()):
            hands_over = True
        if ends_pattern and frames:
            frames[-1][1] = None
    return Script(rel, tuple(assignments), tuple(launches), hands_over, tuple(calls))


def _read_line(line: str, number: int, conditional: bool, guard: tuple[str, ...] | None, assignments: list[Assignment],
               launches: list[ScriptLaunch], calls: list[tuple[str, int]]) -> None:
    if _HANDOVER.match(line):
        return
    default = _DEFAULT_ASSIGN.match(line)
    if default:
        assignments.append(Assignment(default["name"], "${%s:-%s}" % (default["name"], default["value"]), number, True))
        return
    if _take_assignment(line, number, conditional, assignments):
        return
    words = split_words(line)
    if not words:
        return
    launch = launch_from_words(words)
    if launch.program == "other":
        # `check_if_root "celery -A proj worker ..."`: a helper given the command as one string.
        launch = next((candidate for candidate in (launch_from_words(split_words(w)) for w in words[1:] if " " in w)
                       if candidate.program != "other"), launch)
    if launch.program != "other":
        launches.append(ScriptLaunch(launch, number, background=words[-1] == "&", guard=guard))
    elif guard and words[0] == "exec":
        # `exec authentik` in a dispatch branch: the branch ends in a program we do not model,
        # which must not leave its preparatory `manage.py` commands standing for it.
        launches.append(ScriptLaunch(launch, number, guard=guard))
    elif words[0] in (".", "source", "bash", "sh", "exec") and len(words) > 1:
        calls.append((words[1], number))
    elif words[0].startswith(("/", "./")) and not words[0].startswith("/usr/"):
        calls.append((words[0], number))


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
