"""Dockerfiles and compose files.

From a Dockerfile: where `COPY` puts the start scripts (`/start` is
`compose/production/django/start`), the image's `ENV`, `WORKDIR`, `CMD`/`ENTRYPOINT` of
every stage (a stage inherits them from the stage it is built `FROM`), and the base image
(`FROM postgres:16` says which PostgreSQL). `container_command` then combines ENTRYPOINT,
CMD and compose's `entrypoint:`/`command:` by Docker's rules. From compose files (v2, v3,
the compose spec): services with their command, entrypoint, environment, env files,
`scale`/`deploy.replicas`, volumes, with `${VAR:-default}` interpolated from the project's
`.env` the way `docker compose` does.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.commands import expand, split_words
from pgslots.deploy.readers.envfiles import Env, EnvValue, parse_env_file, resolve_env_file
from pgslots.deploy.readers.scripts import logical_lines
from pgslots.deploy.readers.yamlfile import line_of, load_file
from pgslots.evidence import Evidence, Resolution
from pgslots.redact import REDACTOR, redact_value

SHELL = ("/bin/sh", "-c")
"""What Docker puts before a shell-form instruction (`CMD gunicorn app.wsgi`)."""


@dataclasses.dataclass(frozen=True)
class Start:
    """How a container of one stage starts, as Docker stores it: ENTRYPOINT and CMD as argv
    lists (shell form already wrapped in `/bin/sh -c`), with their lines. `cmd_here` says
    the stage wrote its own CMD (an inherited CMD is reset by the stage's ENTRYPOINT)."""

    entrypoint: list[str] | None = None
    entrypoint_line: int | None = None
    entrypoint_shell: bool = False  # shell form: Docker ignores CMD
    cmd: list[str] | None = None
    cmd_line: int | None = None
    cmd_here: bool = False


@dataclasses.dataclass
class Dockerfile:
    path: str
    base_images: list[str]
    copies: dict[str, str]  # destination in the image -> source in the repo
    env: Env
    workdir: str | None
    cmd: list[str] | None
    cmd_line: int | None
    entrypoint: list[str] | None
    entrypoint_line: int | None
    sources: list[str] = dataclasses.field(
        default_factory=list
    )  # LABEL org.opencontainers.image.source/url
    stages: dict[str, Start] = dataclasses.field(
        default_factory=dict
    )  # stage name (lower case) -> how it starts
    entrypoint_shell: bool = False  # the final stage's ENTRYPOINT is in shell form
    stage_envs: dict[str, Env] = dataclasses.field(
        default_factory=dict
    )  # stage name (lower case) -> the ENV its image has (its own and its bases')

    def env_of(self, target: str | None = None) -> Env:
        """The ENV of the image built for `target` (None: the last stage). A stage has the ENV of
        the stages it is built FROM, never that of a sibling stage (`development`'s
        DEV_SERVER=true is not in `production`)."""
        if target and target.lower() in self.stage_envs:
            return self.stage_envs[target.lower()]
        return self.env

    def start(self, target: str | None = None) -> Start:
        """How the image built for `target` (compose `build.target`; None: the last stage) starts."""
        if target and target.lower() in self.stages:
            return self.stages[target.lower()]
        return Start(
            self.entrypoint, self.entrypoint_line, self.entrypoint_shell, self.cmd, self.cmd_line
        )


_INSTRUCTION = re.compile(r"^\s*(?P<op>[A-Za-z]+)\s+(?P<rest>.*)$")


def read_dockerfile(repo: RepoFiles, rel: str) -> Dockerfile | None:
    text = repo.text(rel)
    if text is None:
        return None
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    result = Dockerfile(rel, [], {}, Env(), None, None, None, None, None)
    args: dict[str, str] = {}
    stages: dict[str, Start] = {}  # stage name -> how it starts, which `FROM <stage>` inherits
    envs: dict[str, Env] = {}  # stage name -> its ENV, which `FROM <stage>` inherits
    stage = ""
    start = Start()
    for number, line in logical_lines(text, dockerfile=True):
        match = _INSTRUCTION.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        op, rest = match["op"].upper(), match["rest"].strip()
        if op == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            if stage:
                stages[stage] = start
                envs[stage] = result.env
            base = words[0].lower() if words else ""
            result.base_images.append(base)
            stage = words[2].lower() if len(words) > 2 and words[1].lower() == "as" else ""
            # A new stage starts from its base: an earlier stage's CMD/ENTRYPOINT, or nothing.
            start = dataclasses.replace(stages.get(base, Start()), cmd_here=False)
            # ... and with its base's ENV only (Docker: ENV is per image, not per file).
            result.env = Env().overlay(envs.get(base, Env()))
        elif op == "ARG":
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip().strip('"')
        elif op == "WORKDIR":
            result.workdir = _sub_args(rest, args)
        elif op == "ENV":
            for name, value in _env_pairs(rest):
                REDACTOR.register_named(name, value)
                result.env.set(
                    EnvValue(
                        name,
                        value,
                        Evidence(
                            rel,
                            number,
                            f"ENV {name}={redact_value(name, value)}",
                            Resolution.LITERAL,
                        ),
                    )
                )
        elif op in ("COPY", "ADD"):
            _copy(repo, folder, result, _exec_or_shell(rest), args)
        elif op == "LABEL":
            for name, value in _env_pairs(rest):
                if name in ("org.opencontainers.image.source", "org.opencontainers.image.url"):
                    result.sources.append(value)
        elif op == "CMD":
            start = dataclasses.replace(
                start, cmd=_instruction_argv(rest), cmd_line=number, cmd_here=True
            )
        elif op == "ENTRYPOINT":
            # Docker: an ENTRYPOINT resets a CMD the stage inherited (one it wrote itself stays).
            reset: dict[str, Any] = {} if start.cmd_here else {"cmd": None, "cmd_line": None}
            start = dataclasses.replace(
                start,
                entrypoint=_instruction_argv(rest),
                entrypoint_line=number,
                entrypoint_shell=not _is_exec_form(rest),
                **reset,
            )
    if stage:
        stages[stage] = start
        envs[stage] = result.env
    result.stages = stages
    result.stage_envs = envs
    result.entrypoint, result.entrypoint_line, result.entrypoint_shell = (
        start.entrypoint,
        start.entrypoint_line,
        start.entrypoint_shell,
    )
    result.cmd, result.cmd_line = start.cmd, start.cmd_line
    return result


def _copy(
    repo: RepoFiles, folder: str, result: Dockerfile, words: list[str], args: dict[str, str]
) -> None:
    """Record where `COPY src... dest` puts repository files in the image. Copies from
    another stage (`--from=builder`) carry what that stage copied, already recorded."""
    if any(w.startswith("--from") for w in words):
        return
    words = [w for w in words if not w.startswith("--")]
    if len(words) < 2:
        return
    dest = _sub_args(words[-1], {**args, **{k: v.value for k, v in result.env.values.items()}})
    if not dest.startswith("/") and result.workdir:
        # A relative destination is relative to WORKDIR (`COPY gunicorn.conf.py ../`).
        dest = (
            "/"
            + join(result.workdir, dest)
            + ("/" if dest.endswith("/") or dest in (".", "..") else "")
        )
    sources = words[:-1]
    for source in sources:
        # Paths are relative to the build context: the repo root in most projects.
        src = source[2:] if source.startswith("./") else source.lstrip("/")
        if src not in ("", ".") and not repo.has(src) and not _is_dir(repo, src):
            # The build context is the Dockerfile's folder, or one of its parents
            # (`docker build --file images/base/Dockerfile images/` copies `./common/`).
            found = next(
                (
                    join(context, source)
                    for context in _folder_and_parents(folder)
                    if repo.has(join(context, source)) or _is_dir(repo, join(context, source))
                ),
                None,
            )
            src = found or src
        src = src.rstrip("/") or "."
        if src == "." or _is_dir(repo, src):
            result.copies[dest.rstrip("/") or "/"] = src  # a folder: its files under dest
        elif dest.endswith("/") or len(sources) > 1:
            result.copies[dest + src.rsplit("/", 1)[-1]] = src
        else:
            result.copies[dest] = src


def _folder_and_parents(folder: str) -> list[str]:
    """`images/base`, then `images`: the build contexts a Dockerfile there can have, nearest first."""
    parts = folder.split("/") if folder else []
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _is_dir(repo: RepoFiles, rel: str) -> bool:
    return repo.is_dir(rel)


def _is_exec_form(rest: str) -> bool:
    if not rest.startswith("["):
        return False
    try:
        return isinstance(json.loads(rest), list)
    except ValueError:
        return False


def _instruction_argv(rest: str) -> list[str]:
    """CMD/ENTRYPOINT as Docker runs it: the JSON (exec) form as is, the shell form as
    `/bin/sh -c "<text>"`."""
    if _is_exec_form(rest):
        return [str(w) for w in json.loads(rest)]
    return [*SHELL, rest]


@dataclasses.dataclass(frozen=True)
class ContainerCommand:
    """The argv a container runs (ENTRYPOINT words, then CMD words) and where each part was written."""

    entrypoint: list[str]
    command: list[str]
    entrypoint_at: tuple[str, int | None] | None  # (file, line)
    command_at: tuple[str, int | None] | None
    notes: tuple[str, ...] = ()

    @property
    def argv(self) -> list[str]:
        return [*self.entrypoint, *self.command]


def container_command(
    image: Start | None, image_path: str | None, service: Service | None
) -> ContainerCommand:
    """Docker's and compose's rules: compose `entrypoint:` replaces the image's ENTRYPOINT and
    resets its CMD; compose `command:` replaces CMD; a shell-form ENTRYPOINT ignores CMD;
    otherwise the container runs ENTRYPOINT + CMD (exec form)."""
    image = image or Start()
    notes: list[str] = []
    entry_at: tuple[str, int | None] | None
    if service is not None and service.entrypoint is not None:
        entry, entry_at = list(service.entrypoint), (service.file, service.entrypoint_line)
        shell = False
        if service.command is None and image.cmd:
            notes.append(
                f"{service.name}: compose `entrypoint:` resets the image's CMD ({image_path}:{image.cmd_line})"
            )
        cmd = list(service.command or [])
        cmd_at = (
            (service.command_file, service.command_line) if service.command is not None else None
        )
    else:
        entry, entry_at = (
            list(image.entrypoint or []),
            ((image_path or "", image.entrypoint_line) if image.entrypoint else None),
        )
        shell = image.entrypoint_shell
        if service is not None and service.command is not None:
            cmd, cmd_at = list(service.command), (service.command_file, service.command_line)
        else:
            cmd, cmd_at = (
                list(image.cmd or []),
                ((image_path or "", image.cmd_line) if image.cmd else None),
            )
    if shell and cmd:
        notes.append(
            f"the shell-form ENTRYPOINT ({image_path}:{image.entrypoint_line}) ignores CMD, as Docker does"
        )
        cmd, cmd_at = [], None
    return ContainerCommand(entry, cmd, entry_at, cmd_at, tuple(notes))


def _exec_or_shell(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list):
                return [str(v) for v in value]
        except ValueError:
            pass
    return split_words(rest)


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    words = split_words(rest)
    if words and "=" not in words[0] and len(words) >= 2:  # legacy `ENV NAME value`
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]


def _sub_args(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m[1], m[0]), text)


# ----------------------------------------------------------------------------- compose


@dataclasses.dataclass
class Service:
    name: str
    file: str
    line: int | None
    image: str | None
    dockerfile: str | None  # repo path of the Dockerfile it builds from
    command: list[str] | None
    command_line: int | None
    entrypoint: list[str] | None
    environment: Env
    env_files: list[tuple[str, int | None, bool]]  # (repo path as written, line, required)
    scale: int | None
    scale_line: int | None
    volumes: list[tuple[str, int | None, str]]  # (volume, line, the compose file that says it)
    raw: dict[str, Any]
    entrypoint_line: int | None = None
    target: str | None = None  # `build.target`: the Dockerfile stage it builds
    command_file: str = ""  # the file that wrote `command:` (an overlay's or an extended service's)
    profiles: tuple[str, ...] = ()  # the service runs only when one of them is active
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.command_file = self.command_file or self.file


@dataclasses.dataclass
class ComposeFile:
    path: str
    services: dict[str, Service]
    active_profiles: frozenset[str] = frozenset()  # COMPOSE_PROFILES from the `.env` beside it
    included: tuple[str, ...] = ()  # files brought in by top-level `include:`
    overlays: tuple[
        str, ...
    ] = ()  # merge files applied on top (`-f base -f overlay`, docker-compose.override.yml)
    profiles_line: int | None = None
    notes: list[str] = dataclasses.field(
        default_factory=list
    )  # how it was read (the `.env` example used for interpolation)
    extended: tuple[str, ...] = ()  # files whose services `extends: {file: ...}` reads


_COMPOSE_NAME = re.compile(
    r"(^|/)(docker-)?compose([._-][^/]*)?\.ya?ml$|(^|/)[^/]*\.compose\.ya?ml$"
)


def is_compose_file(path: str) -> bool:
    return bool(_COMPOSE_NAME.search(path))


def read_compose(repo: RepoFiles, rel: str) -> ComposeFile | None:
    docs = load_file(repo, rel)
    if not docs or not isinstance(docs[0], dict):
        return None
    data = docs[0]
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    project_env = Env()
    notes: list[str] = []
    # compose interpolates `${VAR:-default}` from the project's `.env`; when only its example is
    # committed (`.env.example`, `.env-dist`, copied by an install script), the example stands in.
    dotenv, why = resolve_env_file(repo, join(folder, ".env"))
    if dotenv is not None:
        project_env = parse_env_file(repo, dotenv) or Env()
        if dotenv != join(folder, ".env"):
            notes.append(f"{rel}: interpolation from {why}")
    services_node = data.get("services") if isinstance(data.get("services"), dict) else None
    if services_node is None and data.get("version") is None:
        return None
    services: dict[str, Service] = {}
    for name, body in (services_node or {}).items():
        if isinstance(body, dict):
            services[str(name)] = _service(
                repo, rel, folder, str(name), body, services_node, project_env
            )
    for name, service in list(services.items()):
        services[name] = _extended(repo, folder, service, services, project_env, depth=0)
    included = []
    raw_include = include if isinstance(include := data.get("include"), list) else []
    for item in raw_include:
        path = item.get("path") if isinstance(item, dict) else item
        for each in path if isinstance(path, list) else [path]:
            other = join(folder, str(each)) if each else ""
            if other and other != rel and repo.has(other):
                inner = read_compose(repo, other)
                if inner is not None:
                    included.append(other)
                    for name, service in inner.services.items():
                        # The including file may amend an included service (compose merges them).
                        services[name] = (
                            merge_service(service, services[name]) if name in services else service
                        )
    REDACTOR.publish(*services)  # service names are host names too (`HOST: redis`): never secrets
    active = project_env.get("COMPOSE_PROFILES")
    profiles = (
        frozenset(p.strip() for p in (active.value or "").split(",") if p.strip())
        if active
        else frozenset()
    )
    extended = tuple(
        sorted(
            {
                join(folder, str(body["extends"]["file"]))
                for body in (services_node or {}).values()
                if isinstance(body, dict)
                and isinstance(body.get("extends"), dict)
                and body["extends"].get("file")
            }
        )
    )
    return ComposeFile(
        rel,
        services,
        profiles,
        tuple(included),
        (),
        active.evidence.line if active else None,
        notes,
        extended,
    )


def _extended(
    repo: RepoFiles,
    folder: str,
    service: Service,
    siblings: dict[str, Service],
    project_env: Env,
    depth: int,
) -> Service:
    """`extends: {service: base}` or `extends: {file: common.yml, service: base}`: the base
    service's definition with this one's on top (compose's merge rules)."""
    extends = service.raw.get("extends")
    if depth > 3 or not extends:
        return service
    if isinstance(extends, str):
        extends = {"service": extends}
    if not isinstance(extends, dict) or not extends.get("service"):
        return service
    base: Service | None = None
    if extends.get("file"):
        other = join(folder, str(extends["file"]))
        docs = load_file(repo, other) if repo.has(other) else None
        node = (
            docs[0].get("services")
            if docs and isinstance(docs[0], dict) and isinstance(docs[0].get("services"), dict)
            else {}
        )
        body = node.get(extends["service"]) if node else None
        if isinstance(body, dict):
            other_folder = other.rsplit("/", 1)[0] if "/" in other else ""
            base = _service(
                repo, other, other_folder, str(extends["service"]), body, node, project_env
            )
    else:
        base = siblings.get(str(extends["service"]))
    if base is None or base is service:
        return service
    base = _extended(repo, folder, base, siblings, project_env, depth + 1)
    return merge_service(base, service)


def merge_service(base: Service, over: Service) -> Service:
    """`over` on top of `base`, as compose merges an overlay file or `extends`: single values
    replace, `environment` merges by name, `env_file` and `volumes` add up."""
    has = over.raw.__contains__
    return dataclasses.replace(
        base,
        name=over.name,
        file=over.file,
        line=over.line,
        image=over.image if has("image") else base.image,
        dockerfile=over.dockerfile if has("build") else base.dockerfile,
        command=over.command if has("command") else base.command,
        command_line=over.command_line if has("command") else base.command_line,
        command_file=over.command_file if has("command") else base.command_file,
        entrypoint=over.entrypoint if has("entrypoint") else base.entrypoint,
        entrypoint_line=over.entrypoint_line if has("entrypoint") else base.entrypoint_line,
        environment=base.environment.overlay(over.environment),
        env_files=base.env_files + [f for f in over.env_files if f not in base.env_files],
        scale=over.scale if over.scale is not None else base.scale,
        scale_line=over.scale_line if over.scale is not None else base.scale_line,
        volumes=base.volumes + over.volumes,
        raw={**base.raw, **over.raw},
        profiles=over.profiles if has("profiles") else base.profiles,
        target=over.target if has("build") else base.target,
        depends_on=tuple(dict.fromkeys(base.depends_on + over.depends_on)),
    )


def merge_compose(base: ComposeFile, overlay: ComposeFile) -> ComposeFile:
    """The deployment `docker compose -f base -f overlay` runs."""
    services = dict(base.services)
    for name, service in overlay.services.items():
        services[name] = merge_service(services[name], service) if name in services else service
    return dataclasses.replace(
        base,
        services=services,
        overlays=base.overlays + (overlay.path,),
        included=base.included + overlay.included,
    )


def _interpolate(value: Any, env: Env) -> Any:
    if isinstance(value, str) and "$" in value:
        expanded = expand(value.replace("$$", "\x00"), env)
        return expanded.value.replace("\x00", "$") if expanded.value is not None else value
    return value


def _scalar(value: Any) -> str:
    """A YAML scalar as compose puts it in the environment (`true` -> "true", not "True")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _service(
    repo: RepoFiles, rel: str, folder: str, name: str, body: dict, parent: Any, project_env: Env
) -> Service:
    def words(key: str) -> list[str] | None:
        raw = body.get(key)
        if raw is None:
            return None
        if isinstance(raw, list):
            return [str(_interpolate(w, project_env)) for w in raw]
        return split_words(str(_interpolate(raw, project_env)))

    environment = Env()
    raw_env = body.get("environment")
    if isinstance(raw_env, dict):
        for key, value in raw_env.items():
            if value is None:
                continue
            # compose passes YAML booleans as "true"/"false"; they and numbers are never secrets
            text = str(_interpolate(_scalar(value), project_env))
            REDACTOR.register_named(str(key), text)
            environment.set(
                EnvValue(
                    str(key),
                    text,
                    Evidence(
                        rel,
                        line_of(raw_env, key),
                        f"{key}: {redact_value(str(key), text)}",
                        Resolution.LITERAL,
                    ),
                )
            )
    elif isinstance(raw_env, list):
        env_line = line_of(body, "environment")
        for offset, item in enumerate(raw_env):
            key, sep, value = str(item).partition("=")
            if not sep:
                continue
            text = str(_interpolate(value, project_env))
            REDACTOR.register_named(key, text)
            line = env_line + 1 + offset if env_line else None
            environment.set(
                EnvValue(
                    key,
                    text,
                    Evidence(rel, line, f"{key}={redact_value(key, text)}", Resolution.LITERAL),
                )
            )
    env_files: list[tuple[str, int | None, bool]] = []
    raw_files = body.get("env_file")
    for item in raw_files if isinstance(raw_files, list) else [raw_files] if raw_files else []:
        if isinstance(item, dict):
            env_files.append(
                (
                    join(folder, str(item.get("path", ""))),
                    line_of(body, "env_file"),
                    bool(item.get("required", True)),
                )
            )
        else:
            env_files.append(
                (
                    join(folder, str(_interpolate(item, project_env))),
                    line_of(body, "env_file"),
                    True,
                )
            )
    scale, scale_line = None, None
    deploy = body.get("deploy") if isinstance(body.get("deploy"), dict) else {}
    for holder, key in ((body, "scale"), (deploy, "replicas"), (body, "replicas")):
        value = _interpolate(holder.get(key), project_env) if holder else None
        if value is not None:
            try:
                scale, scale_line = int(value), line_of(holder, key)
            except (TypeError, ValueError):
                pass
            break
    dockerfile = None
    target = None
    build = body.get("build")
    if isinstance(build, dict):
        context = join(folder, str(_interpolate(str(build.get("context", ".")), project_env)))
        dockerfile = join(
            context, str(_interpolate(str(build.get("dockerfile", "Dockerfile")), project_env))
        )
        target = (
            str(_interpolate(str(build["target"]), project_env)) if build.get("target") else None
        )
    elif isinstance(build, str):
        dockerfile = join(join(folder, str(_interpolate(build, project_env))), "Dockerfile")
    volumes = []
    raw_volumes = listed if isinstance(listed := body.get("volumes"), list) else []
    for offset, volume in enumerate(raw_volumes):
        text = (
            volume
            if isinstance(volume, str)
            else f"{volume.get('source', '')}:{volume.get('target', '')}"
            if isinstance(volume, dict)
            else ""
        )
        base = line_of(body, "volumes")
        volumes.append(
            (str(_interpolate(text, project_env)), base + 1 + offset if base else None, rel)
        )
    image = body.get("image")
    raw_profiles = body.get("profiles")
    profiles = tuple(str(p) for p in raw_profiles) if isinstance(raw_profiles, list) else ()
    raw_depends = body.get("depends_on")
    depends = tuple(str(d) for d in raw_depends) if isinstance(raw_depends, (list, dict)) else ()
    return Service(
        name=name,
        file=rel,
        line=line_of(parent, name),
        image=str(_interpolate(image, project_env)) if image else None,
        dockerfile=dockerfile,
        command=words("command"),
        command_line=line_of(body, "command"),
        entrypoint=words("entrypoint"),
        environment=environment,
        env_files=env_files,
        scale=scale,
        scale_line=scale_line,
        volumes=volumes,
        raw=body,
        profiles=profiles,
        entrypoint_line=line_of(body, "entrypoint"),
        target=target,
        depends_on=depends,
    )


def compose_score(path: str) -> int:
    """Production compose files first, then the plain one; local/dev/CI/test/override last."""
    name = path.rsplit("/", 1)[-1].lower()
    words = set(re.split(r"[^a-z0-9]+", name))
    score = 0
    if words & {"production", "prod", "live", "deploy"}:
        score += 20
    if words & {
        "local",
        "dev",
        "development",
        "test",
        "tests",
        "testing",
        "ci",
        "e2e",
        "override",
        "debug",
        "example",
        "sample",
    }:
        score -= 20
    if words & {"staging", "stage", "preview", "demo"}:
        score -= 5
    folders = {part.lower() for part in path.split("/")[:-1]}
    if folders & {
        ".devcontainer",
        "devcontainer",
        ".github",  # a CI service's compose file (GitHub Actions, GitLab CI, CircleCI)
        ".gitlab",
        ".circleci",
        "local",
        "dev",
        "development",
        "test",
        "tests",
        "ci",
        "e2e",
        "examples",
        "example",
    }:
        score -= 20  # a development container, a CI or test stack, an example
    score -= path.count("/")  # the project's own, at the top, over nested examples
    return score
