"""Shell start scripts (`compose/production/django/start`, `entrypoint.sh`, `bin/start-web`).

A script is read, not run: its variable assignments (`export X=...`, `X="${X:-4}"`, with
whether they sit inside an `if`), the server commands it launches (with their line), and
whether it hands over to its arguments (`exec "$@"`, as entrypoints do). Heredoc bodies
(`python << END ... END`) are skipped: they are another language.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.arithmetic import arithmetic_spans, evaluate_arithmetic
from pgslots.deploy.readers.commands import (
    ONE_SHOT_COMMANDS,
    Expanded,
    Launch,
    classify,
    expand,
    first_command,
    launch_from_words,
    parse_launch,
    runs_python_file,
    split_words,
    unwrap,
)
from pgslots.deploy.readers.cpus import shell_formula
from pgslots.deploy.readers.envfiles import MISSING_ENV, UNKNOWN_VALUE, Env, EnvValue
from pgslots.deploy.readers.launchers import manage_equivalent
from pgslots.deploy.readers.makefile import make_command
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value

_ARRAY_ASSIGN = re.compile(
    r"^(?:export\s+|local\s+|declare\s+(?:-a\s+)?)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<append>\+)?=\((?P<items>.*)\)\s*;?$",
    re.S,
)
_FUNCTION = re.compile(
    r"^(?:function\s+(?P<a>[A-Za-z_][\w-]*)\s*(?:\(\s*\))?|(?P<b>[A-Za-z_][\w-]*)\s*\(\s*\))\s*(?P<brace>\{)?\s*(?P<body>.*)$"
)
_ASSIGN = re.compile(
    r"^(?:export\s+|readonly\s+|declare\s+(?:-x\s+)?|local\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$",
    re.S,
)
_DEFAULT_ASSIGN = re.compile(
    r"^:\s+\"?\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?=(?P<value>[^}]*)\}\"?\s*$"
)
_HEREDOC = re.compile(r"<<-?\s*['\"]?(?P<tag>[A-Za-z_][A-Za-z0-9_]*)['\"]?")
_HANDOVER = re.compile(r"""^(exec\s+)?["']?\$(@|\{@(:[^}]*)?\}|\*)["']?\s*(&\s*)?$""")
_ARGUMENT_VALUE = re.compile(r"""^["']?\$(@|\{@(:[^}]*)?\}|\*)["']?$""")
"""`COMMAND=${@:$n}`: a variable holding the script's arguments; `$COMMAND` later runs them."""
_ARGUMENTS = (["$@"], ["${@}"], ["$*"], ["${*}"])


def is_handover(line: str) -> bool:
    """`exec "$@"`, also through a wrapper: `exec gosu app "$@"`, `exec su-exec "$USER" "$@"`,
    `exec tini -- "$@"`: the script runs its arguments as the container's program."""
    if _HANDOVER.match(line):
        return True
    words = split_words(line)
    return bool(words) and words[0] == "exec" and unwrap(words)[0] in _ARGUMENTS


@dataclasses.dataclass(frozen=True)
class Assignment:
    name: str
    raw: str  # the right-hand side as written (an array's items joined: `ARGS=(-k x)` -> "-k x")
    line: int
    conditional: bool  # inside an if/case/loop: may not run
    guard: tuple[str, ...] | None = None  # the values of "$1" whose branch runs it
    condition: str | None = (
        None  # the test of the `if` it sits in (`! ` before it: the else branch)
    )
    append: bool = False  # `ARGS+=(--concurrency "$N")`
    exported: bool = (
        False  # `export X=1` (or `set -a` before it): in the environment of what the script runs
    )
    export_only: bool = False  # `export X`: marks an existing variable as exported


@dataclasses.dataclass(frozen=True)
class ScriptLaunch:
    launch: Launch
    line: int
    background: bool = False  # `celery -A app worker &`: runs beside the script's main process
    guard: tuple[str, ...] | None = (
        None  # the values of "$1" that reach it ("*": the default branch)
    )
    execs: bool = False  # `exec ...`: the script ends here, the program replaces it
    looped: bool = False  # inside a `while`/`for` loop: run again and again (`while true; do manage.py x; sleep 60; done`)
    # The tests of the `if` branches it sits in, all of which hold when it runs (an `elif` or
    # `else` branch also carries the negation of the tests before it): `[ "$MODULE_NAME" = api ]`.
    conditions: tuple[str, ...] = ()
    path: str | None = (
        None  # the file it is written in, when not the script's own (a sourced function)
    )


def _set_up_step(item: ScriptLaunch) -> bool:
    """A step that runs and returns (`manage.py migrate`), so the script goes on after it."""
    launch = item.launch
    if item.execs:
        return False
    if launch.program == "manage":
        return bool(launch.positionals) and launch.positionals[0] in ONE_SHOT_COMMANDS
    return launch.program == "other"


@dataclasses.dataclass(frozen=True)
class Script:
    path: str
    assignments: tuple[Assignment, ...]
    launches: tuple[ScriptLaunch, ...]
    hands_over: bool  # ends with exec "$@"
    calls: tuple[tuple[str, int], ...] = ()  # other scripts it runs: (word, line)
    # Its shell functions: name -> (launches, assignments), guarded by the function's own "$1".
    functions: dict[str, tuple[tuple[ScriptLaunch, ...], tuple[Assignment, ...]]] = (
        dataclasses.field(default_factory=dict)
    )

    def assignments_for(self, arg: str | None) -> tuple[Assignment, ...]:
        """The assignments that run when the script is given `arg` as "$1" (None: not known)."""
        return tuple(a for a in self.assignments if _reaches(a.guard, arg, self.dispatch_values()))

    def dispatch_values(self) -> set[str]:
        guards = [
            *(item.guard for item in self.launches),
            *(item.guard for item in self.assignments),
        ]
        return {v for guard in guards if guard for v in guard if v != "*"}

    def selects(self, arg: str | None) -> bool:
        """Whether "$1" = `arg` takes a branch that runs a program of its own (a dispatcher:
        `worker) exec celery ...`). A script that ends in `exec "$@"` and whose branch for
        `arg` only runs set-up steps (`if [ "$1" = gunicorn ]; then manage.py migrate; fi`)
        still runs its arguments: it is not a dispatcher."""
        explicit = self.dispatch_values()
        reached = [
            item for item in self.launches if item.guard and _reaches(item.guard, arg, explicit)
        ]
        if not self.hands_over:
            return bool(reached)
        return not all(_set_up_step(item) for item in reached)


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
        while index < len(lines) and (
            line.rstrip().endswith("\\")
            or (not dockerfile and _open_quote(line))
            or (not dockerfile and _open_array(line))
        ):
            if dockerfile and lines[index].lstrip().startswith("#"):
                index += 1
                continue
            if line.rstrip().endswith("\\"):
                line = line.rstrip()[:-1] + " " + lines[index].strip()
            elif _open_array(line) and not _open_quote(line):
                line = line.rstrip() + " " + lines[index].strip()  # `ARGS=(` ... `)`
            else:  # a quoted value that goes on over the next line: `X="--a\n  --b"`
                line = line + "\n" + lines[index]
            index += 1
        heredoc = (
            _HEREDOC.search(line) if not line.lstrip().startswith("#") else None
        )  # `# python << END` is a comment
        if heredoc and "<<<" not in line:
            tag = heredoc["tag"]
            while index < len(lines) and lines[index].strip() != tag:
                index += 1
            index += 1
            line = line[: heredoc.start()]
        out.append((start, line))
    return out


_ARRAY_OPEN = re.compile(
    r"^\s*(?:local\s+|declare\s+(?:-a\s+)?)?[A-Za-z_]\w*\+?=\((?P<items>[^)]*)$"
)


def _open_array(line: str) -> bool:
    """`ARGS=(` whose `)` is on a later line: bash reads the items up to it."""
    return bool(_ARRAY_OPEN.match(line)) and "#" not in line


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


_ARG_TEST = re.compile(
    r"""^(?:el)?if\s+\[\[?\s*["']?\$\{?1\}?["']?\s*==?\s*["']?([\w.:-]+)["']?\s*\]\]?"""
)
_ARG_CASE = re.compile(r"""^case\s+["']?\$\{?1\}?["']?\s+in\b""")
_CASE_PATTERN = re.compile(
    r"""^\(?\s*((?:["']?[\w.*:-]+["']?)(?:\s*\|\s*["']?[\w.*:-]+["']?)*)\s*\)\s*(.*)$"""
)
_IF_TEST = re.compile(r"^(?:el)?if\s+(?P<test>.*?)\s*(?:;\s*then\b.*)?$")


def _reaches(guard: tuple[str, ...] | None, arg: str | None, explicit: set[str]) -> bool:
    """Whether a branch guarded by `guard` runs for "$1" = `arg` (`*`: no other branch matched)."""
    if guard is None or arg is None:
        return True
    return arg in guard or ("*" in guard and arg not in explicit)


_POSITIONAL = re.compile(r"\$\{?[0-9@#*]")


@dataclasses.dataclass
class _Scope:
    """Where lines are being recorded: the script itself, or the body of one of its functions."""

    launches: list[ScriptLaunch]
    assignments: list[Assignment]
    function: str | None = None
    frames: list[list] = dataclasses.field(
        default_factory=list
    )  # [kind, guard, condition, tests of the earlier branches of an if/elif chain]
    sourced: bool = False  # a function of a file the script sources (`source utils.sh`)
    allexport: bool = False  # after `set -a`: every assignment is exported
    echoes: list[str] = dataclasses.field(
        default_factory=list
    )  # what a function prints (`echo "gunicorn"`): its value in `X=$(fn)`

    def guard(self) -> tuple[str, ...] | None:
        return next((frame[1] for frame in reversed(self.frames) if frame[1]), None)

    def conditional(self) -> bool:
        """Inside an `if`, loop or non-dispatch `case`: a dispatch branch itself always runs for its argument."""
        return any(not frame[1] for frame in self.frames)

    def condition(self) -> str | None:
        return next((frame[2] for frame in reversed(self.frames) if frame[0] == "if"), None)

    def conditions(self) -> tuple[str, ...]:
        """Every test that holds where a line sits: its branch's own, and the negation of the
        earlier branches' of each enclosing if/elif/else chain."""
        out: list[str] = []
        for frame in self.frames:
            if frame[0] != "if":
                continue
            out.extend(f"! {test}" for test in frame[3])
            if frame[2] and not frame[2].startswith("! "):
                out.append(frame[2])
        # A test on the script's arguments (`[ "$1" == all ]`) is the dispatch `guard`, decided
        # by the caller's argument, not by the environment.
        return tuple(test for test in out if not _POSITIONAL.search(test))


def read_script(repo: RepoFiles, rel: str) -> Script | None:
    """The script, read once per repository (every process that runs it asks again)."""
    cache = getattr(repo, "_scripts", None)
    if cache is None:
        cache = {}
        object.__setattr__(repo, "_scripts", cache)
    if rel not in cache:
        cache[rel] = _read_script(repo, rel)
    return cache[rel]


def _read_script(repo: RepoFiles, rel: str) -> Script | None:
    """Assignments, launches and calls of a shell script. Entrypoints that dispatch on their
    first argument (`if [[ "$1" == "worker" ]]`, `case "$1" in worker) ...`) have each launch
    and assignment tagged with the argument values that reach it (`guard`). A shell function's
    launches and assignments are taken where it is called (`gunicorn) run_server asgi ;;`),
    with the function's own "$1" dispatch decided by the call's argument."""
    text = repo.text(rel)
    if text is None:
        return None
    main = _Scope([], [])
    scope = main
    calls: list[tuple[str, int]] = []
    functions: dict[str, _Scope] = {}
    hands_over = False
    for number, raw in logical_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _FUNCTION.match(line)
        if header and scope is main and not line.startswith(("if ", "case ")):
            name = header["a"] or header["b"]
            scope = functions[name] = _Scope([], [], name)
            body = (header["body"] or "").strip()
            if body.endswith("}"):  # `start() { exec gunicorn app.wsgi; }`
                _read_line(
                    body[:-1].strip().rstrip(";").strip(),
                    number,
                    scope,
                    main,
                    functions,
                    calls,
                    repo,
                )
                scope = main
            continue
        if scope is not main and line in ("{",):
            continue
        if scope is not main and line in ("}", "};") and not scope.frames:
            scope = main
            continue
        frames = scope.frames
        first = line.split(None, 1)[0]
        if first in ("if", "case", "for", "while", "until"):
            arg = _ARG_TEST.match(line)
            kind = "case1" if _ARG_CASE.match(line) else ("if" if first == "if" else "loop")
            test = _IF_TEST.match(line) if first == "if" else None
            frames.append(
                [kind, (arg.group(1),) if arg else None, test["test"] if test else None, []]
            )
            # `if [ -z "$X" ]; then export X=1; fi` on one line
            for piece in re.split(r";\s*(?:then|do)\s+", line)[1:]:
                _take_assignment(piece.split(";")[0].strip(), number, scope, True)
            if re.search(r"\bfi\s*$|\bdone\s*$|\besac\s*$", line):
                frames.pop()
            continue
        if first in ("fi", "done", "esac"):
            if frames:
                frames.pop()
            continue
        if first == "elif" and frames:
            arg = _ARG_TEST.match(line)
            test = _IF_TEST.match(line)
            if frames[-1][2] and not frames[-1][2].startswith("! "):
                frames[-1][3].append(frames[-1][2])
            frames[-1][1] = (arg.group(1),) if arg else None
            frames[-1][2] = test["test"] if test else None
        if first == "else" and frames and frames[-1][0] == "if":
            if frames[-1][2] and not frames[-1][2].startswith("! "):
                frames[-1][3].append(frames[-1][2])
            frames[-1][1] = ("*",) if frames[-1][1] else None  # the default branch of a dispatch
            frames[-1][2] = f"! {frames[-1][2]}" if frames[-1][2] else None
        ends_pattern = False
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
        if first in ("then", "else", "elif", "do"):
            line = line.split(None, 1)[1] if " " in line else ""
            if not line:
                continue
        if scope is main and line.split(None, 1)[0] in (".", "source"):
            # `source utils.sh`: its shell functions can be called from here on.
            for name, body in _sourced_functions(repo, rel, line).items():
                functions.setdefault(name, body)
        _read_line(line, number, scope, main, functions, calls, repo)
        if (
            scope is main
            and line.strip()
            and (is_handover(line.strip()) or _runs_argument_variable(line.strip(), main))
        ):
            hands_over = True
        if ends_pattern and frames:
            frames[-1][1] = None
    bodies = {name: (tuple(f.launches), tuple(f.assignments)) for name, f in functions.items()}
    return Script(
        rel, tuple(main.assignments), tuple(main.launches), hands_over, tuple(calls), bodies
    )


def _sourced_functions(repo: RepoFiles, rel: str, line: str) -> dict[str, _Scope]:
    """The functions a sourced file defines (`source utils.sh`, next to the script or from the
    repository root), each taken at its call with the caller's branch and tests."""
    words = split_words(line)
    if len(words) < 2 or "$" in words[1]:
        return {}
    word = words[1][2:] if words[1].startswith("./") else words[1]
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    stack: set[str] = getattr(repo, "_sourcing", set())
    for candidate in (f"{folder}/{word}" if folder else word, word.lstrip("/")):
        if candidate == rel or candidate in stack or not repo.has(candidate):
            continue
        object.__setattr__(repo, "_sourcing", stack | {rel})
        try:
            script = read_script(repo, candidate)
        finally:
            object.__setattr__(repo, "_sourcing", stack)
        if script is None:
            return {}
        return {
            name: _Scope(
                [dataclasses.replace(item, path=item.path or candidate) for item in launches],
                list(assignments),
                name,
                sourced=True,
            )
            for name, (launches, assignments) in script.functions.items()
        }
    return {}


def _eval_of_literal(words: list[str], scope: _Scope, main: _Scope) -> list[str] | None:
    """The command `eval $VAR` (or `exec eval "$VAR"`) runs when VAR was assigned a literal
    command earlier in the script."""
    rest = words[1:] if words[:1] == ["exec"] else words
    if len(rest) != 2 or rest[0] != "eval":
        return None
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", rest[1])
    if not match:
        return None
    found = next(
        (
            a
            for a in reversed([*main.assignments, *scope.assignments])
            if a.name == match[1] and a.raw
        ),
        None,
    )
    if found is None or "$(" in found.raw or "`" in found.raw:
        return None
    return (["exec"] if words[:1] == ["exec"] else []) + split_words(found.raw)


def _runs_argument_variable(line: str, scope: _Scope) -> bool:
    """`$COMMAND` (or `exec $COMMAND`) where the script set COMMAND to its arguments."""
    words = split_words(line.rstrip("&").strip())
    if words[:1] == ["exec"]:
        words = words[1:]
    if len(words) != 1:
        return False
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", words[0])
    return match is not None and any(
        a.name == match[1] and _ARGUMENT_VALUE.match(a.raw) for a in scope.assignments
    )


def _read_line(
    line: str,
    number: int,
    scope: _Scope,
    main: _Scope,
    functions: dict[str, _Scope],
    calls: list[tuple[str, int]],
    repo: RepoFiles | None = None,
) -> None:
    if is_handover(line):
        return
    guard = scope.guard()
    default = _DEFAULT_ASSIGN.match(line)
    if default:
        value = default["value"]
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            value = value[
                1:-1
            ]  # `: "${X:="--concurrency $N"}"`: the quotes are not part of the value
        scope.assignments.append(
            Assignment(
                default["name"],
                f"${{{default['name']}:-{value}}}",
                number,
                True,
                guard,
                exported=scope.allexport,
            )
        )
        return
    if _take_assignment(line, number, scope, scope.conditional()):
        return
    words = split_words(line)
    if words and words[0] == "echo" and scope.function is not None:
        scope.echoes.append(words[1] if len(words) > 1 else "")
        return
    words = _expand_program(words, scope, main, functions)
    evaluated = _eval_of_literal(words, scope, main)
    if evaluated is not None:
        words = evaluated  # `eval ${WORKER_COMMAND}` with WORKER_COMMAND="gunicorn ..." set above
    if not words:
        return
    launch = launch_from_words(words)
    if launch.program == "other":
        # `check_if_root "celery -A proj worker ..."`: a helper given the command as one string.
        launch = next(
            (
                candidate
                for candidate in (launch_from_words(split_words(w)) for w in words[1:] if " " in w)
                if candidate.program != "other"
            ),
            launch,
        )
    if (
        launch.program == "other"
        and repo is not None
        and manage_equivalent(unwrap(first_command(words))[0], repo)
    ):
        launch = dataclasses.replace(
            parse_launch(["manage.py", *unwrap(first_command(words))[0][1:]]),
            inline_env=launch.inline_env,
        )
    if launch.program == "other" and words[0] in functions and functions[words[0]] is not scope:
        _call(functions[words[0]], words[1] if len(words) > 1 else "", scope, main)
    elif launch.program != "other":
        execs = words[0] == "exec"
        looped = any(frame[0] == "loop" for frame in scope.frames)
        # `celery worker --detach`: it daemonizes, the script goes on beside it, like `&`.
        background = words[-1] == "&" or (
            launch.program == "celery-worker"
            and ("detach" in launch.options or "D" in launch.options)
        )
        scope.launches.append(
            ScriptLaunch(
                launch,
                number,
                background=background,
                guard=guard,
                execs=execs,
                looped=looped,
                conditions=scope.conditions(),
            )
        )
        if scope is not main:
            main.launches.append(
                ScriptLaunch(launch, number, background=background, execs=execs)
            )  # also read as the script's own
    elif runs_python_file(words):
        # `python app.py` after `manage.py collectstatic`: the project's own server script is
        # the process (a program pgslots does not model), not the set-up step before it.
        execs = words[0] == "exec"
        scope.launches.append(
            ScriptLaunch(launch, number, guard=guard, execs=execs, conditions=scope.conditions())
        )
        if scope is not main:
            main.launches.append(ScriptLaunch(launch, number, execs=execs))
    elif guard and words[0] == "exec":
        # `exec authentik` in a dispatch branch: the branch ends in a program we do not model,
        # which must not leave its preparatory `manage.py` commands standing for it.
        scope.launches.append(ScriptLaunch(launch, number, guard=guard, execs=True))
    elif words[0] in (".", "source", "bash", "sh", "exec") and len(words) > 1:
        calls.append((words[1], number))
    elif words[0].startswith(("/", "./")) and not words[0].startswith("/usr/"):
        calls.append((words[0], number))


_WHOLE_VARIABLE = re.compile(r"^\$\{?([A-Za-z_]\w*)\}?$")
_WHOLE_ARRAY = re.compile(r"^\$\{([A-Za-z_]\w*)\[@\]\}$")
_FUNCTION_OUTPUT = re.compile(r"^\$\(\s*([A-Za-z_][\w-]*)\s*\)$")


def _expand_program(
    words: list[str], scope: _Scope, main: _Scope, functions: dict[str, _Scope]
) -> list[str]:
    """`exec "$gunicorn_bin" "${gunicorn_args[@]}"` with `gunicorn_bin=$(select_gunicorn)` (a
    function whose every `echo` names the same program, a venv's or the PATH's) and
    `gunicorn_args=(config.wsgi -b ...)`: the program and the array's items, as bash runs them."""
    start = 1 if words and words[0] == "exec" else 0
    found = _WHOLE_VARIABLE.match(words[start]) if len(words) > start else None
    if not found:
        return words

    def last(name: str) -> Assignment | None:
        for where in (scope, main):
            for item in reversed(where.assignments):
                if item.name == name and not item.append:
                    return item
        return None

    assigned = last(found[1])
    if assigned is None and len(words) > start + 1 and not words[start + 1].startswith("$"):
        # `${CMD_PREFIX} gunicorn ...` with CMD_PREFIX never set in the script: an optional
        # wrapper from the environment (empty, bash drops the word); the program follows.
        return words[:start] + words[start + 1 :]
    output = _FUNCTION_OUTPUT.match(assigned.raw) if assigned else None
    if assigned is not None and output is None:
        # `gunicorn_cmd="gunicorn $gunicorn_params"` ... `exec $gunicorn_cmd`: the unquoted
        # variable is split into words, and so is each whole variable inside it (the last
        # assignment of each: the else branch of `if dev; then params=...; else params=...`).
        written = split_words(assigned.raw)
        if not written or written[0].startswith("$"):
            return words
        out = words[:start] + written[:1]
        for word in written[1:] + words[start + 1 :]:
            inner = _WHOLE_VARIABLE.match(word)
            value = last(inner[1]) if inner else None
            literal = value is not None and not _FUNCTION_OUTPUT.match(value.raw)
            out.extend(split_words(value.raw) if value is not None and literal else [word])
        return out
    echoes = functions[output[1]].echoes if output and output[1] in functions else []
    programs = {e.split()[0].rsplit("/", 1)[-1] for e in echoes if e.split()}
    if len(programs) != 1:
        return words
    out = words[:start] + [next(iter(programs))]
    for word in words[start + 1 :]:
        array = _WHOLE_ARRAY.match(word)
        items = last(array[1]) if array else None
        out.extend(split_words(items.raw) if items is not None else [word])
    return out


def _call(function: _Scope, arg: str, scope: _Scope, main: _Scope) -> None:
    """`run_backend_server asgi "${@:2}"`: the function's launches and assignments for that
    argument, recorded where the call is (its branch, its conditions)."""
    guards = [
        *(item.guard for item in function.launches),
        *(item.guard for item in function.assignments),
    ]
    explicit = {v for guard in guards if guard for v in guard if v != "*"}
    guard = scope.guard()
    conditional = scope.conditional()
    for item in function.assignments:
        if _reaches(item.guard, arg, explicit):
            scope.assignments.append(
                dataclasses.replace(item, guard=guard, conditional=conditional or item.conditional)
            )
    if scope is main and guard is None and not function.sourced:
        return  # its launches are already the script's own
    for launch in function.launches:
        if _reaches(launch.guard, arg, explicit):
            scope.launches.append(
                dataclasses.replace(
                    launch, guard=guard, conditions=scope.conditions() + launch.conditions
                )
            )


_EXPORT_ONLY = re.compile(
    r"^(?:export|declare\s+-x)\s+(?P<names>[A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*)*)\s*$"
)
_ALLEXPORT = re.compile(r"^set\s+(?P<sign>[-+])(?:[a-z]*a[a-z]*\b|o\s+allexport\b)")


def _take_assignment(line: str, number: int, scope: _Scope, conditional: bool) -> bool:
    allexport = _ALLEXPORT.match(line)
    if allexport:
        scope.allexport = allexport["sign"] == "-"
        return True
    exported = scope.allexport or line.startswith(("export ", "declare -x "))
    only = _EXPORT_ONLY.match(line)
    if only:
        for name in only["names"].split():
            scope.assignments.append(
                Assignment(
                    name,
                    "",
                    number,
                    conditional,
                    scope.guard(),
                    scope.condition(),
                    exported=True,
                    export_only=True,
                )
            )
        return True
    array = _ARRAY_ASSIGN.match(line)
    if array:
        scope.assignments.append(
            Assignment(
                array["name"],
                array["items"].strip(),
                number,
                conditional,
                scope.guard(),
                scope.condition(),
                append=bool(array["append"]),
                exported=exported,
            )
        )
        return True
    match = _ASSIGN.match(line)
    if not match or (
        " " in match["value"].strip().strip("'\"")
        and not match["value"].strip().startswith(("'", '"', "$"))
    ):
        return False
    value = match["value"].strip()
    words = split_words(value) if value else [""]
    if arithmetic_spans(value) == [(0, len(value))]:
        words = [value]  # `N=$(((W + 1) / 2))`: one word, whatever spaces it holds
    scope.assignments.append(
        Assignment(
            match["name"],
            words[0] if words else "",
            number,
            conditional,
            scope.guard(),
            scope.condition(),
            exported=exported,
        )
    )
    return True


_TEST = re.compile(
    r"""^(?P<neg>!\s+)?\[\[?\s*(?:(?P<op1>-[nz])\s+(?P<var>\S+)|(?P<left>\S+)\s*(?P<op2>==?|!=)\s*(?P<right>\S+))\s*\]\]?$"""
)


def _test(condition: str | None, env: Env) -> bool | None:
    """`[ -n "$X" ]`, `[[ -z "${X:-}" ]]`, `[ "$X" = "v" ]` and their negation (`! `, the else
    branch) against the environment; None when the test is anything else or a value unknown."""
    if not condition:
        return None
    arithmetic = re.fullmatch(r"(!\s+)?\(\((.*)\)\)", condition.strip())
    if arithmetic:
        # `((${CELERY_SINGLE_PROCESS:-0} == 1))`: true when the expression is not zero
        def value_of(name: str) -> str | None:
            found = env.get(name)
            if found is None:
                return "0" if env.complete else None
            return None if found.value == UNKNOWN_VALUE else found.value

        number = evaluate_arithmetic(arithmetic[2], value_of)
        return None if number is None else (number != 0) != bool(arithmetic[1])
    inner = re.fullmatch(r"(!\s+)?\[\[\s+(.*?)\s+\]\]", condition)
    if inner and not inner[1] and " && " in inner[2] and " || " not in inner[2]:
        # `[[ "$A" == "True" && "$B" == "True" ]]`: each part its own test
        condition = " && ".join(f"[[ {part.strip()} ]]" for part in inner[2].split(" && "))
    for joiner, combine in ((" || ", any), (" && ", all)):
        if joiner in condition and not condition.startswith("! "):
            # `[ "$P" == gevent ] || [ "$P" == prefork ]`: three-valued, unknown only if it matters
            verdicts = [_test(part.strip(), env) for part in condition.split(joiner)]
            decided = [v for v in verdicts if v is not None]
            if combine is any and any(decided):
                return True
            if combine is all and decided and not all(decided):
                return False
            return None if len(decided) < len(verdicts) else combine(decided)
    negated = condition.startswith("! ")
    match = _TEST.match(condition[2:] if negated else condition)
    if match is None:
        return None

    def value(word: str) -> str | None:
        text = split_words(word)
        expanded = expand(text[0] if text else "", env)
        if (
            expanded.value is None
            and env.complete
            and all(env.get(name) is None for name in expanded.missing)
        ):
            return ""  # set nowhere in a complete environment: empty
        return expanded.value

    if match["op1"]:
        found = value(match["var"])
        verdict = None if found is None else (bool(found) if match["op1"] == "-n" else not found)
    else:
        left, right = value(match["left"]), value(match["right"])
        verdict = (
            None if left is None or right is None else ((left == right) == (match["op2"] != "!="))
        )
    if verdict is None:
        return None
    return (not verdict) if negated != bool(match["neg"]) else verdict


def branch_test(condition: str, env: Env) -> bool | None:
    """Whether an `if`/`elif` test holds in this environment (None: it cannot be told)."""
    return _test(condition, env)


def false_tests(item: ScriptLaunch, env: Env) -> list[str]:
    """The tests of a launch's branch decided false in this environment (`elif [ "$MODULE_NAME"
    = 'celery' ]` in the dashboard's container): with any, it does not run there."""
    return [condition for condition in item.conditions if _test(condition, env) is False]


def apply_assignments(script: Script, env: Env, repo: RepoFiles, arg: str | None = None) -> Env:
    """The environment after the script's assignments, as far as they can be known.

    An assignment inside an `if` whose test can be read (`[ -n "$X" ]`, `[ "$X" = v ]`) is taken
    when the test holds. Otherwise it is taken only when the variable is not already set (the
    common `if [ -z "${X:-}" ]; then export X=...` fallback); one whose value cannot be known
    (`$(nproc)`) records the variable as unknown at that line. With `arg`, the branches of a
    dispatch on "$1" that do not run for it are left out.
    """
    result = env.overlay({})
    incomplete = env.get(MISSING_ENV) is not None
    for item in script.assignments_for(arg):
        before = result.get(item.name)
        if item.export_only:
            if before is not None and not before.exported:
                result.set(dataclasses.replace(before, exported=True))
            continue
        # A variable already in the environment stays exported when the script reassigns it.
        exported = item.exported or (before is not None and before.exported)
        verdict = _test(item.condition, result) if item.conditional else None
        if verdict is False:
            continue
        if item.conditional and verdict is None and result.get(item.name) is not None:
            continue
        if item.conditional and verdict is None and incomplete and item.name.isupper():
            # `if [ -z "$X" ]; then X=default`: X may well be set by the env file we cannot see.
            note = f"set here only when unset; it may be set in {env.value(MISSING_ENV)} (not in the repository)"
            result.set(
                EnvValue(
                    item.name,
                    UNKNOWN_VALUE,
                    Evidence(
                        script.path,
                        item.line,
                        repo.quote(script.path, item.line),
                        Resolution.LITERAL,
                        note,
                    ),
                    exported=exported,
                )
            )
            continue
        expanded: Expanded = expand(item.raw, result, symbolic="://" in item.raw)
        quoted = repo.quote(script.path, item.line)
        if expanded.value is None:
            # Set, but to something only the running host knows (`$(nproc)`); shell arithmetic over
            # the CPU count stays a formula (`$((2*$(nproc)+1))` -> 2 * cpus + 1).
            formula = shell_formula(item.raw, lambda name: result.value(name))
            note = (
                f"{formula} (cpus: the host's CPU count)"
                if formula
                else "computed at run time: " + ", ".join(expanded.missing)
            )
            result.set(
                EnvValue(
                    item.name,
                    UNKNOWN_VALUE,
                    Evidence(script.path, item.line, quoted, Resolution.LITERAL, note),
                    exported=exported,
                    formula=formula,
                )
            )
            continue
        REDACTOR.register_named(item.name, expanded.value)
        if (
            before is not None
            and not item.append
            and not expanded.defaulted
            and expanded.value == before.value
            and [u.name for u in expanded.used] == [item.name]
        ):
            # `X="${X:-}"` with X already set: the value, and its evidence, are where X was set.
            result.set(dataclasses.replace(before, exported=exported))
            continue
        value, template = expanded.value, item.raw if expanded.used else None
        own_default = re.fullmatch(r"\$\{" + re.escape(item.name) + r":?-(.*)\}", item.raw, re.S)
        if template and own_default and item.name in expanded.defaulted:
            template = own_default[
                1
            ]  # `: "${OPTS:=--concurrency $N}"`: the default is what was written
        if item.append and before is not None and before.value != UNKNOWN_VALUE:
            value = f"{before.value} {value}".strip()
            template = f"{before.template or before.value} {item.raw}".strip()
        resolution = Resolution.ENV_DEFAULT if expanded.defaulted else Resolution.LITERAL
        note = f"{item.name}={redact_value(item.name, value)}"
        result.set(
            EnvValue(
                item.name,
                value,
                Evidence(script.path, item.line, quoted, resolution, note),
                template=template,
                exported=exported,
            )
        )
    return result


# ----------------------------------------------------------------------------- entrypoints


@dataclasses.dataclass
class HandOver:
    """What a container runs once its entry scripts have handed over to their arguments."""

    argv: list[
        str
    ]  # a suffix of the container's argv: the program that really runs, or a script that does not hand over
    env: Env
    notes: list[str]
    cited: list[Evidence] = dataclasses.field(
        default_factory=list
    )  # where a launcher's command was read (a Makefile recipe)
    exits: bool = False  # the last script hands over to no arguments after set-up commands: the container runs them and exits


def hand_over(
    argv: list[str], env: Env, repo: RepoFiles, locate: Callable[[str], str | None]
) -> HandOver:
    """Follow the container's argv (ENTRYPOINT + CMD) through wrappers (`tini --`,
    `dumb-init`, `gosu user`) and entry scripts that run set-up steps and end in
    `exec "$@"`: the command is then their arguments, in the environment the scripts
    exported. Stops at a program pgslots models, at a script that dispatches on "$1" or runs
    its own program (read later by the caller with its argument), or at anything unknown."""
    notes: list[str] = []
    cited: list[Evidence] = []
    for _ in range(6):
        program, _ = unwrap(first_command(argv))
        if not program or classify(program) != "other":
            break
        recipe = _make_recipe(program, repo, locate)
        if recipe is not None:
            # `make altprodserver`: the target's recipe is the command
            command, where = recipe
            notes.append(f"`{' '.join(program)[:40]}` runs the recipe at {where.location()}")
            cited.append(where)
            argv = split_words(command)
            continue
        path = locate(program[0])
        script = read_script(repo, path) if path else None
        rest = program[1:]
        if script is None:
            if rest and classify(unwrap(rest)[0]) != "other" and not _python(program[0]):
                # `ENTRYPOINT ["docker-entrypoint.sh"]` from a base image, CMD `gunicorn ...`.
                notes.append(
                    f'`{program[0]}` is not in the repository; entrypoints end in exec "$@", '
                    f"so its arguments `{' '.join(rest)[:60]}` are taken as the command"
                )
                argv = rest
                continue
            break
        arg = rest[0] if rest else None
        steps = [item for item in script.launches if item.execs or item.launch.program != "other"]
        if (
            script.hands_over
            and not rest
            and steps
            and all(
                item.launch.program == "manage"
                and not item.background
                and not long_running(item.launch)
                for item in steps
            )
        ):
            return HandOver(
                argv, env, notes, cited, exits=True
            )  # `manage.py complete_initialization; exec "$@"` and no command
        if not script.hands_over or script.selects(arg) or not rest or arg in script.functions:
            break
        env = apply_assignments(script, env, repo, arg)
        argv = rest
    return HandOver(argv, env, notes, cited)


def _make_recipe(
    program: list[str], repo: RepoFiles, locate: Callable[[str], str | None]
) -> tuple[str, Evidence] | None:
    """`make [-C dir] [-f file] TARGET`: the command of TARGET's recipe and its line."""
    if program[0].rsplit("/", 1)[-1] not in ("make", "gmake"):
        return None
    words, folder, makefile, target = program[1:], "", "Makefile", None
    while words:
        word = words.pop(0)
        if word in ("-C", "--directory") and words:
            folder = words.pop(0)
        elif word in ("-f", "--file", "--makefile") and words:
            makefile = words.pop(0)
        elif not word.startswith("-") and "=" not in word and target is None:
            target = word
    path = locate(f"{folder.rstrip('/')}/{makefile}" if folder else makefile)
    found = make_command(repo, path, target) if path and target else None
    if found is None or path is None:
        return None
    return found[0], Evidence(
        path, found[1], repo.quote(path, found[1]), Resolution.LITERAL, f"make {target}"
    )


_LONG_RUNNING = re.compile(
    r"worker|cluster|^run(server|stator|_?huey|dramatiq|apscheduler|_?bot|_?consumer)|listen|consume|serve|"
    r"daemon|scheduler|loop|watch|process_tasks|huey"
)


_STARTS_OTHERS = re.compile(r"^(start|spawn|launch)_?(services?|daemons?|workers?|all)$")


def starts_other_programs(launch: Launch) -> bool:
    """A management command that, by its name, starts other programs and returns
    (`manage.py start_service all`): what it leaves running cannot be read from its call."""
    return bool(launch.positionals) and bool(_STARTS_OTHERS.match(launch.positionals[0]))


def long_running(launch: Launch) -> bool:
    """A management command that, by its name, keeps running (`qcluster`, `rqworker`, `runstator`)."""
    return (
        bool(launch.positionals)
        and bool(_LONG_RUNNING.search(launch.positionals[0]))
        and launch.positionals[0] not in ONE_SHOT_COMMANDS
    )


def _python(word: str) -> bool:
    return bool(re.fullmatch(r"python[0-9.]*", word.rsplit("/", 1)[-1]))
