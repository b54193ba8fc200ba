"""Where a repository's scripts build and tag its images (CI workflows: readers.workflows).

A compose file or manifest that runs `org/app:1.2` runs this repository's code when the
repository builds that image; a Makefile or script writes the build in two common ways:

- `docker build -t org/app -f Dockerfile .` (or `docker buildx build`) in a Makefile or script;
- the same through a script function that wraps it (`build() { $DOCKER buildx build ... $@; }`
  then `build --tag $TAG_NS/app:rolling web/`), with the script's `VAR=${VAR:-default}`
  assignments filling the tag in.

Each is returned as a `Build`: the Dockerfile path, the tags and the line that says so.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import join
from pgslots.deploy.readers.scripts import logical_lines

DOCKER_BUILD = re.compile(r"(?:\bdocker|\$\{?DOCKER\}?)\s+(?:buildx\s+)?build\b([^\n;&|]*)")
FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*(?:\(\s*\))?\s*\{\s*$")
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
DEFAULTED = re.compile(r"^\$\{(\w+):?-([^}]*)\}$")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
OPTIONS_WITH_VALUE = frozenset(
    {
        "-t",
        "--tag",
        "-f",
        "--file",
        "--build-arg",
        "--target",
        "--platform",
        "--output",
        "-o",
        "--cache-from",
        "--label",
    }
)


@dataclasses.dataclass(frozen=True)
class Build:
    dockerfile: str  # repository path of the Dockerfile built
    tags: tuple[str, ...]  # image names as tagged (variables filled in where the script sets them)
    line: int  # where the build (or its tags) is written
    how: str  # "tags it"


def script_builds(rel: str, text: str) -> list[Build]:
    """`docker build` lines of a Makefile or shell script, direct or through a wrapper function."""
    lines = logical_lines(text)
    physical = text.splitlines()
    values = _assignments(lines)
    wrappers = _wrapper_functions(lines)
    out: list[Build] = []
    for number, line in lines:
        if line.lstrip().startswith("#"):
            continue
        found = DOCKER_BUILD.search(line)
        args = found[1] if found else None
        if args is None:
            words = line.split(None, 1)
            if words and words[0] in wrappers and len(words) > 1:
                args = words[1]
        if args is None or "$@" in args or "${@" in args:
            continue  # the wrapper's own body: its callers give the arguments
        build = _build_from_args(args, number)
        if build is None:
            continue
        # cite the physical line that writes the (first) tag, the build may span several
        at = next(
            (
                n
                for n in range(number, min(number + 40, len(physical) + 1))
                if build.tags[0] in physical[n - 1]
            ),
            number,
        )
        out.append(
            dataclasses.replace(
                build,
                dockerfile=_fill(build.dockerfile, values),
                tags=tuple(_fill(t, values) for t in build.tags),
                line=at,
            )
        )
    return out


def _build_from_args(args: str, number: int) -> Build | None:
    words = args.split()
    tags = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-t", "--tag")] + [
        w.split("=", 1)[1] for w in words if w.startswith("--tag=")
    ]
    if not tags:
        return None
    file = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-f", "--file")), None)
    positional = [
        w
        for i, w in enumerate(words)
        if not w.startswith("-") and (i == 0 or words[i - 1] not in OPTIONS_WITH_VALUE)
    ]
    context = positional[-1] if positional else "."
    if context.startswith("$"):
        context = "."
    context = context.removeprefix("./").rstrip("/") or "."
    dockerfile = (
        join("", file.removeprefix("./"))
        if file
        else join("" if context == "." else context, "Dockerfile")
    )
    return Build(dockerfile, tuple(t.strip("'\"") for t in tags), number, "tags it")


def _assignments(lines: list[tuple[int, str]]) -> dict[str, str]:
    """`VAR=value` and `VAR="${VAR:-default}"` at the script's top level: the value it starts with."""
    out: dict[str, str] = {}
    for _, line in lines:
        found = ASSIGNMENT.match(line)
        if not found:
            continue
        value = found[2].strip().strip("'\"")
        defaulted = DEFAULTED.match(value)
        if defaulted and defaulted[1] == found[1]:
            value = defaulted[2]
        if "$" not in value and " " not in value:
            out.setdefault(found[1], value)
    return out


def _fill(args: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values.get(m[1] or m[2], m[0]), args)


def _wrapper_functions(lines: list[tuple[int, str]]) -> set[str]:
    """Functions whose body runs `docker [buildx] build ... $@`: their calls are docker builds."""
    out: set[str] = set()
    current: str | None = None
    for _, line in lines:
        if current is None:
            found = FUNCTION.match(line)
            if found:
                current = found[1]
            continue
        if line.strip() == "}":
            current = None
            continue
        build = DOCKER_BUILD.search(line)
        if build and ("$@" in build[1] or "${@" in build[1]):
            out.add(current)
    return out
