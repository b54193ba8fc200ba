"""Make targets used as start commands (`ENTRYPOINT ["make", "altprodserver"]`).

The target's recipe is what runs: its last line is the long-running command (earlier lines
and the prerequisites, `collectstatic` and such, are set-up steps). Make variables are
expanded from the file's assignments (`NUM_PROCS ?= 3`) and the target's own
(`altprodserver: NUM_PROCS:=3`), as make does; anything else is left as written.
"""

from __future__ import annotations

import re

from pgslots.deploy.readers import RepoFiles

_ASSIGN = re.compile(
    r"^(?:(?P<target>[A-Za-z0-9_.%/-]+)\s*:\s*)?(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>\?=|:=|::=|\+=|=)\s*(?P<value>.*)$"
)
_RULE = re.compile(r"^(?P<targets>[A-Za-z0-9_.%/ -]+?)\s*::?(?!=)\s*(?P<deps>[^=]*)$")
_REFERENCE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]")


def make_command(repo: RepoFiles, path: str, target: str) -> tuple[str, int] | None:
    """The command `make <target>` leaves running, with its line, or None when the file has no such target."""
    variables: dict[str, str] = {}
    own: dict[str, str] = {}
    recipe: list[tuple[int, str]] = []
    current: list[str] = []
    for number, raw in enumerate(repo.lines(path), start=1):
        if raw.startswith("\t"):
            if target in current and raw.strip() and not raw.strip().startswith("#"):
                recipe.append((number, raw.strip().lstrip("@-+")))
            continue
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        assign = _ASSIGN.match(line)
        if assign:
            scope = (
                own
                if assign["target"] == target
                else variables
                if assign["target"] is None
                else None
            )
            if scope is not None and not (assign["op"] == "?=" and assign["name"] in scope):
                value = assign["value"].strip()
                scope[assign["name"]] = (
                    f"{scope.get(assign['name'], '')} {value}".strip()
                    if assign["op"] == "+="
                    else value
                )
            continue
        rule = _RULE.match(line)
        current = rule["targets"].split() if rule else []
    if not recipe:
        return None
    number, command = recipe[-1]
    scope = {**variables, **own}
    for _ in range(5):  # variables refer to variables (`$(CELERY)` -> `cd x && celery ...`)
        expanded = _REFERENCE.sub(lambda m: scope.get(m[1], m[0]), command)
        if expanded == command:
            break
        command = expanded
    return command, number
