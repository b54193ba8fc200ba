"""AWS Lambda functions of a SAM or CloudFormation template (`AWS::Serverless::Function`,
`AWS::Lambda::Function`).

Lambda runs each concurrent invocation in an execution environment of its own: a process
with its own Django and its own database connection. Nothing caps how many run at once
except `ReservedConcurrentExecutions` on the function (the account's regional limit is not
in the repository), so an uncapped function's worst case is unbounded.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.yamlfile import line_of, load_file

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclasses.dataclass(frozen=True)
class LambdaFunction:
    name: str  # the resource's logical id
    handler: str  # `package.module.function`
    code: str  # the folder the code is packaged from (CodeUri / Code), repository-relative
    path: str  # the template
    line: int  # the resource's `Type:` line
    reserved: int | None  # ReservedConcurrentExecutions, when a number
    reserved_line: int | None  # where it is written (a number or a parameter)
    events: tuple[str, ...]  # event source types: SQS, Api, HttpApi, Schedule, ...
    env: tuple[tuple[str, str], ...]  # literal Environment.Variables
    env_line: int | None


def template_paths(repo: RepoFiles) -> list[str]:
    return [
        rel
        for rel in repo.paths
        if rel.endswith((".yaml", ".yml", ".template"))
        and any(t in (repo.text(rel) or "") for t in FUNCTION_TYPES)
    ]


def read_functions(repo: RepoFiles, rel: str) -> list[LambdaFunction]:
    """The Python functions of a template (their Handler and code folder; Globals.Function
    gives what a function leaves out)."""
    docs = load_file(repo, rel)
    data = docs[0] if docs else None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        return []
    globals_: dict = _mapping(data.get("Globals"))
    shared: dict = _mapping(globals_.get("Function"))
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    lines = repo.lines(rel)
    parameters = parameter_values(repo, _mapping(data.get("Parameters")))
    out = []
    for name, resource in data["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") not in FUNCTION_TYPES:
            continue
        props: dict = _mapping(resource.get("Properties"))

        def prop(key: str, props: dict = props) -> object:
            return props.get(key, shared.get(key))

        runtime, handler = prop("Runtime"), prop("Handler")
        if not isinstance(handler, str) or (
            isinstance(runtime, str) and not runtime.startswith("python")
        ):
            continue
        code = prop("CodeUri") if resource["Type"] == FUNCTION_TYPES[0] else prop("Code")
        reserved_raw = props.get("ReservedConcurrentExecutions")
        events: dict = _mapping(props.get("Events"))
        environment = prop("Environment")
        variables = (environment.get("Variables") if isinstance(environment, dict) else None) or {}
        env = tuple(
            (str(k), value)
            for k, v in variables.items()
            if (value := _env_value(v, lines, line_of(variables, k), parameters)) is not None
        )
        out.append(
            LambdaFunction(
                name=str(name),
                handler=handler,
                code=join(folder, code) if isinstance(code, str) and "://" not in code else folder,
                path=rel,
                line=line_of(resource, "Type") or line_of(data["Resources"], name) or 1,
                reserved=reserved_raw
                if isinstance(reserved_raw, int)
                and not isinstance(reserved_raw, bool)
                and not _tagged(lines, line_of(props, "ReservedConcurrentExecutions"))
                else None,
                reserved_line=line_of(props, "ReservedConcurrentExecutions")
                if "ReservedConcurrentExecutions" in props
                else None,
                events=tuple(str(e.get("Type")) for e in events.values() if isinstance(e, dict)),
                env=env,
                env_line=line_of(variables, next(iter(variables), None)) if variables else None,
            )
        )
    return out


def parameter_values(repo: RepoFiles, declared: dict) -> dict[str, str]:
    """The template parameters whose value the repository shows: `Default:`, or a literal in a
    `sam deploy --parameter-overrides Name=value` (CI configuration, Makefile, scripts; the last
    one written wins, they are usually the same). A value built from a variable or a CI
    placeholder (`'$RDS_HOST'`, `<<parameters.x>>`) is not literal: left unknown."""
    out = {
        str(name): str(spec["Default"])
        for name, spec in declared.items()
        if isinstance(spec, dict) and isinstance(spec.get("Default"), (str, int, float))
    }
    for rel in repo.paths:
        text = repo.text(rel) if rel.endswith(OVERRIDE_FILES) or "Makefile" in rel else None
        if not text or not re.search(r"parameter[-_]overrides", text):
            continue
        for name in declared:
            for found in re.finditer(
                rf"(?<![\w$]){re.escape(str(name))}=(['\"]?)([^\s'\"]+)\1", text
            ):
                if not re.search(r"[$<>{}]", found[2]):
                    out[str(name)] = found[2]
    return out


OVERRIDE_FILES = (".yml", ".yaml", ".sh", ".toml", ".mk", ".cfg")


def _env_value(
    raw: object, lines: list[str], line: int | None, parameters: dict[str, str]
) -> str | None:
    """A variable's value as deployed: literal, or `!Ref Param` with the parameter's known value."""
    if not isinstance(raw, (str, int, float, bool)):
        return None
    if not _tagged(lines, line):
        return str(raw)
    tag = re.match(r"^[^:#]+:\s*!(\w+)", lines[line - 1]) if line else None
    return parameters.get(str(raw)) if tag is not None and tag[1] == "Ref" else None


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _tagged(lines: list[str], line: int | None) -> bool:
    """The value on that line is written with a CloudFormation tag (`!Ref`, `!Sub`, ...)."""
    if line is None or not 0 < line <= len(lines):
        return False
    return bool(re.match(r"^[^:#]+:\s*!", lines[line - 1]))


def handler_module(repo: RepoFiles, function: LambdaFunction) -> str | None:
    """The repository file of the handler's module (`wcivf.lambda_handler.handler`)."""
    module = function.handler.rsplit(".", 1)[0].replace(".", "/")
    for candidate in (
        join(function.code, module + ".py"),
        join(function.code, module + "/__init__.py"),
    ):
        if repo.has(candidate):
            return candidate
    return None
