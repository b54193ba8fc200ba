"""Assemble a `Topology` from what the readers found: which processes run, with what
environment, against which server.

The deployment description is chosen once, in this order: Kubernetes manifests, the
production compose file, a Procfile, supervisord, systemd units, a Dockerfile's CMD. Each
process definition is followed through its entrypoint and start script to the server it
really runs, with the environment it really gets (image ENV < env_file < environment <
script exports), and the Django settings are evaluated in that environment.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from pgslots.deploy import budget
from pgslots.deploy.model import (
    AliasFact, ConnectionPolicy, Demand, DjangoFacts, PgbouncerSetup, ProcessGroup, Quantity, SlotBudget, Topology,
)
from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.commands import Launch, first_command, launch_from_words, split_words, unwrap
from pgslots.deploy.readers.django_settings import (
    SettingsChoice, SettingsRead, alias_facts, choose_settings, read_settings,
)
from pgslots.deploy.readers.docker import (
    ComposeFile, Dockerfile, compose_score, container_command, is_compose_file, read_compose, read_dockerfile,
)
from pgslots.deploy.readers.envfiles import (
    MISSING_ENV, Env, EnvValue, is_env_file, parse_env_file, production_score, resolve_env_file,
)
from pgslots.deploy.readers.kubernetes import Manifests, looks_like_helm_values, looks_like_manifest, read_helm_values, read_manifests
from pgslots.deploy.readers.platforms import ProcessDef, read_procfile, read_s6_services, read_supervisord, read_systemd
from pgslots.deploy.readers.postgres import (
    flags_from_argv, pgbouncer_from_env, read_pgbouncer_ini, read_postgresql_conf,
)
from pgslots.deploy.readers.pyeval import ModuleResolver, V
from pgslots.deploy.readers.scripts import apply_assignments, hand_over, read_script
from pgslots.deploy.readers.versions import read_versions
from pgslots.deploy.servers import Shape, shape_of, unmodelled
from pgslots.evidence import Evidence, Resolution


@dataclasses.dataclass
class ProcessSpec:
    """A process definition before interpretation."""

    name: str
    words: list[str] | None
    env: Env
    source: Evidence
    hosts: Quantity
    replicas: Quantity
    max_replicas: Quantity | None = None
    entry_words: list[str] | None = None
    dockerfile: Dockerfile | None = None
    workdir: str = ""
    command_at: Evidence | None = None  # where `words` were written, when not at `source` (a Dockerfile's CMD)
    entry_at: Evidence | None = None  # where `entry_words` were written (a Dockerfile's ENTRYPOINT, compose `entrypoint:`)


@dataclasses.dataclass
class Resolved:
    spec: ProcessSpec
    launch: Launch | None
    env: Env
    where: Evidence
    script_evidence: list[Evidence]
    companions: list[tuple[Launch, Evidence]] = dataclasses.field(default_factory=list)  # started with `&` beside it


@dataclasses.dataclass
class Scan:
    """Everything read from the repository, before the model."""

    repo: RepoFiles
    resolver: ModuleResolver
    dockerfiles: dict[str, Dockerfile]
    composes: list[ComposeFile]
    manifests: Manifests
    notes: list[str]
    sources: list[str]
    trees: dict


POSTGRES_IMAGES = re.compile(r"(^|/)(postgres|postgis|timescaledb|timescaledb-ha|postgresql|pgvector)(:|$)|bitnami/postgresql|supabase/postgres")
PGBOUNCER_IMAGES = re.compile(r"pgbouncer")


def scan(root: Path) -> Scan:
    repo = RepoFiles.scan(root)
    dockerfiles = {}
    for rel in repo.paths:
        name = rel.rsplit("/", 1)[-1]
        if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile") or name.startswith("Dockerfile-"):
            parsed = read_dockerfile(repo, rel)
            if parsed:
                dockerfiles[rel] = parsed
    composes = []
    for rel in repo.paths:
        if is_compose_file(rel):
            parsed = read_compose(repo, rel)
            if parsed is not None:
                composes.append(parsed)
    manifests = Manifests()
    for rel in repo.paths:
        if rel.endswith((".yml", ".yaml")) and not is_compose_file(rel) and not rel.startswith((".github/", ".gitlab", ".circleci/")):
            text = repo.text(rel) or ""
            if looks_like_manifest(text):
                read_manifests(repo, rel, manifests)
            elif looks_like_helm_values(rel, text):
                read_helm_values(repo, rel, manifests)
    notes = [f"Helm values {rel}:{line}: {key} = {value} (the chart's templates decide which workload it scales; "
             "supply it with --assume NAME.replicas=N)" for rel, key, value, line in manifests.helm_values]
    return Scan(repo, ModuleResolver(repo), dockerfiles, composes, manifests, notes, [], {})


# ----------------------------------------------------------------------------- environments


def env_files_env(s: Scan, files: list[tuple[str, int | None, bool]], notes: list[str]) -> Env:
    env = Env()
    for rel, _, required in files:
        chosen, why = resolve_env_file(s.repo, rel)
        if chosen is None:
            if required:
                notes.append(why)
                earlier = env.get(MISSING_ENV)
                missing = f"{earlier.value} and {rel}" if earlier else rel
                env.set(EnvValue(MISSING_ENV, missing, Evidence(rel, None, why, Resolution.ENV_FILE)))
            continue
        if chosen != rel:
            notes.append(f"env file {why}")
        parsed = parse_env_file(s.repo, chosen)
        if parsed is not None:
            env = env.overlay(parsed)
    return env


def project_env(s: Scan, notes: list[str]) -> Env:
    """Without a compose file: the production env files the project keeps (`.envs/.production/*`, `.env`).
    Env files that only a development compose file loads are the developers' environment."""
    development = {rel for c in s.composes if _development_compose(c) for sv in c.services.values() for rel, _, _ in sv.env_files}
    production = {rel for c in s.composes if not _development_compose(c) for sv in c.services.values() for rel, _, _ in sv.env_files}
    candidates = [p for p in s.repo.paths if is_env_file(p) and production_score(p) >= 0 and (p not in development or p in production)]
    if not candidates:
        return Env()
    real = {p for p in candidates}
    best = sorted(candidates, key=lambda p: (-production_score(p), p.count("/"), "example" in p, p))
    chosen: list[str] = []
    top = production_score(best[0])
    for path in best:
        if production_score(path) < top or production_score(path) < 0 and top >= 0:
            continue
        stem = re.sub(r"([-._](example|sample|template|dist))$", "", path)
        if stem != path and stem in real:
            continue  # the real file is there: the example is not needed
        chosen.append(path)
    env = Env()
    for path in sorted(chosen):
        parsed = parse_env_file(s.repo, path)
        if parsed is not None:
            env = env.overlay(parsed)
    if chosen:
        env.sources = tuple(sorted(chosen))
    return env


# ----------------------------------------------------------------------------- process definitions


def _development_compose(compose: ComposeFile) -> bool:
    """A compose file for developers: named or placed so (local, CI, devcontainer), or one
    that runs Django's development server or auto-reload and is not named production."""
    score = compose_score(compose.path)
    if score <= -10:
        return True
    runs_dev_server = any(w in ("runserver", "runserver_plus", "--reload") for sv in compose.services.values() for w in (sv.command or []))
    return runs_dev_server and score < 10


OTHER_DATABASES = re.compile(r"(^|/)(mysql|mariadb|percona|mongo|sqlserver|mssql)(:|$)")


def database_affinity(s: Scan, compose: ComposeFile) -> int:
    """Projects ship one compose file per database (`docker-compose.postgres.yml`,
    `...mariadb.yml`, `...sqlite.yml`): among equally named ones, the PostgreSQL one is the
    deployment to audit (1), one with another database server the least likely (-1)."""
    images = []
    for service in compose.services.values():
        dockerfile = s.dockerfiles.get(service.dockerfile or "")
        images.append((service.image or "").lower())
        images.extend(b.lower() for b in (dockerfile.base_images if dockerfile else []))
    if any(POSTGRES_IMAGES.search(i) for i in images):
        return 1
    return -1 if any(OTHER_DATABASES.search(i) for i in images) else 0


def _image_name(image: str) -> str:
    """`ghcr.io/org/app:1.2@sha256:...` -> `ghcr.io/org/app` (variables already interpolated)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def built_images(s: Scan) -> dict[str, str]:
    """Image names the repository builds itself: compose services with both `build:` and
    `image:`, in any compose file (image name -> Dockerfile path)."""
    out: dict[str, str] = {}
    for compose in s.composes:
        for service in compose.services.values():
            if service.image and service.dockerfile and service.dockerfile in s.dockerfiles:
                out.setdefault(_image_name(service.image), service.dockerfile)
    return out


def image_dockerfile(s: Scan, image: str) -> tuple[Dockerfile, str] | None:
    """The repository Dockerfile a prebuilt image comes from, and why we think so: another
    service builds that image, or a Dockerfile labels itself as the image's source
    (`LABEL org.opencontainers.image.source=https://github.com/org/app` for `ghcr.io/org/app`)."""
    name = _image_name(image)
    built = built_images(s).get(name)
    if built:
        return s.dockerfiles[built], f"image {name} is built from {built} by another compose service"
    tail = "/".join(name.split("/")[-2:]).lower()
    owner = tail.split("/")[0] if "/" in tail else ""
    labelled = [(path, dockerfile, source) for path, dockerfile in sorted(s.dockerfiles.items()) for source in dockerfile.sources]
    for path, dockerfile, source in labelled:
        if source.lower().rstrip("/").endswith("/" + tail):
            return dockerfile, f"{path} is labelled as the source of image {name}"
    # `ghcr.io/goauthentik/server` from a Dockerfile labelled github.com/goauthentik/authentik:
    # the same owner publishes it, and it is the only Dockerfile that says so.
    same_owner = {path: dockerfile for path, dockerfile, source in labelled if owner and f"/{owner}/" in source.lower() + "/"}
    if len(same_owner) == 1:
        path, dockerfile = next(iter(same_owner.items()))
        return dockerfile, f"{path} is labelled as built by {owner}, who publishes image {name}"
    # `baserow/backend` from `backend/Dockerfile` (or `Dockerfile.backend`): the one Dockerfile
    # named like the image.
    last = name.rsplit("/", 1)[-1].lower()
    named = [path for path in sorted(s.dockerfiles) if last in _dockerfile_names(path) and not _infra_base(s.dockerfiles[path])]
    if len(named) == 1:
        return s.dockerfiles[named[0]], f"{named[0]} is named like image {name}"
    return None


def _dockerfile_names(path: str) -> set[str]:
    """What a Dockerfile's path calls the image: its folder (`backend/Dockerfile`) or its
    suffix (`Dockerfile.backend`, `backend.Dockerfile`)."""
    parts = path.lower().split("/")
    base = parts[-1]
    names = {parts[-2]} if len(parts) > 1 and base == "dockerfile" else set()
    if base.startswith("dockerfile."):
        names.add(base[len("dockerfile."):])
    if base.endswith(".dockerfile"):
        names.add(base[: -len(".dockerfile")])
    return names


def compose_specs(s: Scan, compose: ComposeFile, notes: list[str]) -> list[ProcessSpec]:
    specs = []
    for service in compose.services.values():
        if service.image and (POSTGRES_IMAGES.search(service.image) or PGBOUNCER_IMAGES.search(service.image)):
            continue
        if service.image and service.dockerfile is None and INFRA_IMAGES.search(service.image.rsplit("/", 1)[-1]):
            continue  # redis, nginx, traefik...: their command is the image's own arguments
        dockerfile = s.dockerfiles.get(service.dockerfile or "")
        if dockerfile is None and service.dockerfile is None and service.image:
            linked = image_dockerfile(s, service.image)
            if linked is not None:
                dockerfile = linked[0]
                notes.append(f"{service.name}: {linked[1]}; its ENV, COPY and CMD were used")
        start = dockerfile.start(service.target) if dockerfile else None
        if service.command is None and service.entrypoint is None and (
            start is None or not (start.cmd or start.entrypoint) or _infra_base(dockerfile)
        ):
            continue  # a third-party or infrastructure image run as is (redis, nginx, traefik, postgres)
        if dockerfile is not None and dockerfile.base_images and (
            POSTGRES_IMAGES.search(dockerfile.base_images[-1]) or PGBOUNCER_IMAGES.search(dockerfile.base_images[-1])
        ):
            continue  # the database server or pgbouncer, built with the project's own config
        env = dockerfile.env if dockerfile else Env()
        # The image's ENV, the env files and `environment:` are the container's whole
        # environment (unless an env file is missing).
        env = env.overlay(env_files_env(s, service.env_files, notes)).overlay(service.environment).completed()
        scale = Quantity(service.scale, (Evidence(compose.path, service.scale_line, s.repo.quote(compose.path, service.scale_line)),)) if service.scale is not None else Quantity(1)
        if service.scale == 0:
            continue
        runs = container_command(start, dockerfile.path if dockerfile else None, service)
        notes.extend(runs.notes)
        specs.append(
            ProcessSpec(
                name=service.name, words=runs.command or None, env=env,
                source=Evidence(compose.path, service.line, f"service {service.name}"),
                hosts=Quantity(None, (), f"{service.name}.hosts"), replicas=scale,
                entry_words=runs.entrypoint or None,
                dockerfile=dockerfile, workdir=(dockerfile.workdir or "") if dockerfile else "",
                command_at=_at(s, runs.command_at),
                entry_at=_at(s, runs.entrypoint_at),
            )
        )
    return specs


def _at(s: Scan, where: tuple[str, int | None] | None) -> Evidence | None:
    return Evidence(where[0], where[1], s.repo.quote(where[0], where[1])) if where else None


def _cmd_evidence(s: Scan, dockerfile: Dockerfile) -> Evidence:
    return Evidence(dockerfile.path, dockerfile.cmd_line, s.repo.quote(dockerfile.path, dockerfile.cmd_line))


def _infra_base(dockerfile: Dockerfile) -> bool:
    """A Dockerfile that only configures a database, proxy or broker image."""
    base = dockerfile.base_images[-1] if dockerfile.base_images else ""
    return bool(POSTGRES_IMAGES.search(base) or PGBOUNCER_IMAGES.search(base) or INFRA_IMAGES.search(base))


INFRA_IMAGES = re.compile(r"nginx|redis|rabbitmq|memcached|traefik|caddy|envoy|busybox|cloud-?sql|datadog|fluent|otel|statsd|"
                         r"postgres|pgbouncer|minio|elasticsearch|opensearch|valkey|kafka|zookeeper|mailhog|flower")


def app_dockerfile(s: Scan) -> Dockerfile | None:
    """The one Dockerfile of the application (not a database's), if there is exactly one with a CMD."""
    found = [d for d in s.dockerfiles.values() if d.cmd and not POSTGRES_IMAGES.search(" ".join(d.base_images)) and compose_score(d.path) > -15]
    return found[0] if len(found) == 1 else None


def k8s_specs(s: Scan, base_env: Env) -> list[ProcessSpec]:
    specs = []
    fallback = app_dockerfile(s)
    for container in s.manifests.containers:
        if container.image and (POSTGRES_IMAGES.search(container.image) or PGBOUNCER_IMAGES.search(container.image)):
            continue
        if container.argv is None and container.image and INFRA_IMAGES.search(container.image):
            continue
        env = base_env
        for name in container.config_maps:
            env = env.overlay(s.manifests.config_maps.get(name, Env()))
        env = env.overlay(container.env)
        replicas = Quantity(container.replicas if container.replicas is not None else 1,
                            (Evidence(container.path, container.replicas_line, s.repo.quote(container.path, container.replicas_line)),))
        max_replicas = None
        for hpa in s.manifests.autoscalers:
            if hpa.target == container.workload and hpa.max_replicas is not None:
                max_replicas = Quantity(hpa.max_replicas, (Evidence(hpa.path, hpa.line, s.repo.quote(hpa.path, hpa.line)),))
                if hpa.min_replicas is not None:
                    replicas = Quantity(hpa.min_replicas, (Evidence(hpa.path, hpa.line, f"minReplicas: {hpa.min_replicas}"),))
        name = container.workload if container.name in (container.workload, "app", "web", "django") else f"{container.workload}/{container.name}"
        dockerfile = fallback
        words = container.argv if container.argv else (dockerfile.cmd if dockerfile else None)
        if container.argv is None and dockerfile is not None:
            s.notes.append(f"{container.workload}: no command in {container.path}; the image's CMD from {dockerfile.path} was used")
        specs.append(
            ProcessSpec(
                name=name, words=words, env=env if dockerfile is None else dockerfile.env.overlay(env),
                source=Evidence(container.path, container.line, f"{container.kind} {container.workload}"),
                hosts=Quantity(1, (), None), replicas=replicas, max_replicas=max_replicas,
                entry_words=dockerfile.entrypoint if dockerfile else None, dockerfile=dockerfile,
                workdir=(dockerfile.workdir or "") if dockerfile else "",
            )
        )
    return specs


def simple_specs(defs: list, base_env: Env, kind: str) -> list[ProcessSpec]:
    specs = []
    for item in defs:
        env = base_env.overlay({k: EnvValue(k, v, Evidence(item.path, item.line, f"{k}={v}")) for k, v in item.env})
        replicas = Quantity(item.count, (Evidence(item.path, item.line, f"numprocs={item.count}"),)) if item.count else Quantity(1)
        specs.append(
            ProcessSpec(
                name=item.name, words=split_words(item.command), env=env,
                source=Evidence(item.path, item.line, f"{kind} {item.name}"),
                hosts=Quantity(None, (), f"{item.name}.hosts"), replicas=replicas,
            )
        )
    return specs


def managed_specs(s: Scan, spec: ProcessSpec) -> list[ProcessSpec] | None:
    """A container whose main process is a process manager runs several programs: supervisord
    (`supervisord -c /etc/supervisord.conf`, the file found through the Dockerfile's COPY or
    by name) or s6-overlay (`ENTRYPOINT ["/init"]`, its `s6-rc.d/*/run` services). Each
    program becomes its own process definition, sharing the container's hosts and replicas."""
    program = unwrap(first_command(spec.words))[0] if spec.words else []
    head = program[0].rsplit("/", 1)[-1] if program else ""
    defs: list[ProcessDef] = []
    manager = ""
    if head == "supervisord":
        conf = next((program[i + 1] for i, w in enumerate(program[:-1]) if w in ("-c", "--configuration")), None)
        path = locate(s, conf, spec) if conf else None
        if path is None:
            named = [p for p in s.repo.named("supervisord.conf", "supervisor.conf") if read_supervisord(s.repo, p)]
            path = named[0] if len(named) == 1 else None
        defs, manager = (read_supervisord(s.repo, path) if path else []), "supervisord"
    elif program[:1] == ["/init"] or (spec.entry_words or [])[:1] == ["/init"] and not spec.words:
        defs, manager = read_s6_services(s.repo), "s6-overlay"  # s6-overlay's init starts the services
    if not defs:
        return None
    out = []
    for item in defs:
        env = spec.env.overlay({k: EnvValue(k, v, Evidence(item.path, item.line, f"{k}={v}")) for k, v in item.env})
        replicas = spec.replicas
        if item.count and item.count > 1:
            replicas = Quantity(budget.floor(spec.replicas) * item.count, spec.replicas.evidence + (Evidence(item.path, item.line, f"numprocs={item.count}"),))
        out.append(dataclasses.replace(
            spec, name=f"{spec.name}/{item.name}", words=split_words(item.command), env=env, replicas=replicas,
            source=Evidence(item.path, item.line, f"{manager} program {item.name} in {spec.name} ({spec.source.location()})"),
            entry_words=None, workdir=item.directory or spec.workdir, command_at=None, entry_at=None,
        ))
    return out


def locate(s: Scan, word: str, spec: ProcessSpec) -> str | None:
    """The repository file a command word names inside the image (`/start` -> its source)."""
    repo = s.repo
    dockerfiles = [spec.dockerfile] if spec.dockerfile else list(s.dockerfiles.values())
    for dockerfile in dockerfiles:
        if dockerfile is None:
            continue
        if word in dockerfile.copies and repo.has(dockerfile.copies[word]):
            return dockerfile.copies[word]
        if "/" not in word:  # a command found through PATH (`docker-entrypoint.sh`)
            for folder in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin"):
                if repo.has(dockerfile.copies.get(f"{folder}/{word}", "")):
                    return dockerfile.copies[f"{folder}/{word}"]
        for dest, src in dockerfile.copies.items():
            if dest and word.startswith(dest.rstrip("/") + "/"):
                candidate = (src.rstrip("/") + "/" if src not in (".", "") else "") + word[len(dest.rstrip("/")) + 1:]
                if repo.has(candidate):
                    return candidate
    for prefix in (spec.workdir, "/app", "/code", "/srv", "/usr/src/app", "/opt/app", ""):
        if prefix and word.startswith(prefix.rstrip("/") + "/"):
            candidate = word[len(prefix.rstrip("/")) + 1:]
            if repo.has(candidate):
                return candidate
    plain = word[2:] if word.startswith("./") else word.lstrip("/")
    if repo.has(plain):
        return plain
    matches = repo.named(word.rsplit("/", 1)[-1])
    return matches[0] if len(matches) == 1 else None


def resolve(s: Scan, spec: ProcessSpec) -> Resolved:
    env = spec.env
    evidence: list[Evidence] = []
    where = spec.source
    if spec.entry_words and "--" in spec.entry_words[1:]:
        # `wait-for-it.sh db:5432 -t 30 -- /entrypoint-uwsgi.sh`, `dockerize ... --`, `tini --`:
        # the entrypoint waits, then runs what follows `--` (with the command as its arguments).
        tail = spec.entry_words[spec.entry_words.index("--", 1) + 1:]
        spec = dataclasses.replace(spec, entry_words=None, words=tail + list(spec.words or []))
    if spec.entry_words or spec.words:
        # ENTRYPOINT + CMD, through wrappers and entry scripts ending in `exec "$@"`.
        argv = list(spec.entry_words or []) + list(spec.words or [])
        passed = hand_over(argv, env, s.repo, lambda word: locate(s, word, spec))
        env = passed.env
        s.notes.extend(passed.notes)
        program = unwrap(first_command(passed.argv))[0]
        position = len(argv) - len(passed.argv) + (passed.argv.index(program[0]) if program and program[0] in passed.argv else 0)
        if position < len(spec.entry_words or []) and spec.entry_at is not None:
            # The program is named in the ENTRYPOINT (`["gunicorn", "app.wsgi"]`); CMD adds options.
            if spec.words and spec.command_at is not None:
                evidence.append(spec.command_at)
            spec = dataclasses.replace(spec, command_at=spec.entry_at)
        spec = dataclasses.replace(spec, entry_words=None, words=passed.argv)
    words = spec.words or []
    launch = launch_from_words(words) if words else None
    companions: list[tuple[Launch, Evidence]] = []
    if launch is not None and launch.program == "other" and words:
        launch, env, where = follow_script(s, spec, words, env, where, evidence, depth=0, companions=companions)
    elif launch is not None and spec.command_at is not None:
        where = spec.command_at
    elif launch is not None and spec.source.line is not None:
        line = spec.source.line
        where = Evidence(spec.source.path, _command_line(s, spec) or line, s.repo.quote(spec.source.path, _command_line(s, spec) or line))
    if launch is not None and launch.inline_env:
        env = env.overlay({k: EnvValue(k, v, Evidence(where.path, where.line, f"{k}={v}")) for k, v in launch.inline_env.items()})
    return Resolved(spec, launch, env, where, evidence, companions)


def _command_line(s: Scan, spec: ProcessSpec) -> int | None:
    for compose in s.composes:
        if compose.path == spec.source.path:
            service = compose.services.get(spec.name)
            if service is not None:
                return service.command_line
    return spec.source.line


INTERPRETERS = re.compile(r"^(ba|da|z|a)?sh$|^python[0-9.]*$|^env$|^exec$")


def follow_script(s: Scan, spec: ProcessSpec, words: list[str], env: Env, where: Evidence, evidence: list[Evidence], depth: int,
                  companions: list[tuple[Launch, Evidence]] | None = None):
    # `["/bin/bash", "/app/compose/production/django/start"]`: the script is the argument.
    scripts = [w for w in words if not w.startswith("-") and not INTERPRETERS.match(w.rsplit("/", 1)[-1])]
    target = next((w for w in scripts if "/" in w or w.endswith(".sh")), scripts[0] if scripts else words[0])
    path = locate(s, target, spec)
    script = read_script(s.repo, path) if path else None
    if script is None:
        return None, env, where
    arg = next(iter(words[words.index(target) + 1:]), "") if target in words else ""
    if script.hands_over and arg in script.functions:
        # `web() { exec gunicorn ...; }` ... `"$@"`: the argument names the function to run.
        body_launches, body_assignments = script.functions[arg]
        script = dataclasses.replace(script, launches=tuple(i for i in body_launches if not i.guard),
                                     assignments=script.assignments + body_assignments)
    launches = list(script.launches)
    dispatching = bool(script.dispatch_values()) or any(item.guard for item in launches)
    env = apply_assignments(script, env, s.repo, arg if dispatching else None)
    if any(item.guard for item in launches):
        # Dispatch on "$1": the branch its argument selects, else the default (`*`, `else`) branch.
        chosen_branch = [i for i in launches if i.guard and arg in i.guard] or [i for i in launches if i.guard and "*" in i.guard]
        launches = chosen_branch or [i for i in launches if not i.guard]
    servers = [item for item in launches if item.launch.program not in ("manage", "other")]
    foreground = [item for item in servers if not item.background] or servers
    chosen = foreground[-1] if foreground else (launches[-1] if launches else None)
    if chosen is not None and chosen.launch.program == "other":
        where = Evidence(script.path, chosen.line, s.repo.quote(script.path, chosen.line), Resolution.COMMAND_FLAG)
        return chosen.launch, env, where  # reported as a program pgslots does not model
    if companions is not None:
        companions.extend((item.launch, Evidence(script.path, item.line, s.repo.quote(script.path, item.line), Resolution.COMMAND_FLAG))
                          for item in servers if item.background and item is not chosen)
    if chosen is None and script.calls and depth < 3:
        word, _ = script.calls[-1]
        return follow_script(s, spec, [word], env, where, evidence, depth + 1, companions)
    if chosen is None:
        return None, env, where
    where = Evidence(script.path, chosen.line, s.repo.quote(script.path, chosen.line), Resolution.COMMAND_FLAG)
    return chosen.launch, env, where


# ----------------------------------------------------------------------------- settings facts


def policy_from(read: SettingsRead | None, notes: list[str]) -> tuple[ConnectionPolicy, list[AliasFact]]:
    if read is None:
        return ConnectionPolicy(conn_max_age_known=False), []
    databases = read.databases()
    default = databases.get("default")
    aliases = alias_facts(read)
    if default is None:
        return ConnectionPolicy(conn_max_age_known=False), aliases
    entry = default.value

    def get(key: str) -> V | None:
        value = entry.get(key)
        return value if isinstance(value, V) else None

    cma = get("CONN_MAX_AGE")
    if cma is None:
        conn_max_age, known, cma_ev, cma_env = 0, True, (Evidence(read.choice.path, None, "CONN_MAX_AGE not set", Resolution.LIBRARY_DEFAULT, "Django's default CONN_MAX_AGE=0"),), None
    elif cma.known and (cma.value is None or isinstance(cma.value, int)):
        conn_max_age, known, cma_ev, cma_env = cma.value, True, cma.evidence, cma.env_var
    else:
        conn_max_age, known, cma_ev, cma_env = 0, False, cma.evidence, cma.env_var
    health = get("CONN_HEALTH_CHECKS")
    options = get("OPTIONS")
    pool_min = pool_max = None
    pool_ev: tuple[Evidence, ...] = ()
    if options is not None and isinstance(options.value, dict) and isinstance(options.value.get("pool"), V):
        pool = options.value["pool"]
        pool_ev = pool.evidence
        if pool.value is True:
            pool_min = pool_max = 4
        elif isinstance(pool.value, dict):
            low = pool.value.get("min_size")
            high = pool.value.get("max_size")
            pool_min = low.value if isinstance(low, V) and isinstance(low.value, int) else 4
            pool_max = high.value if isinstance(high, V) and isinstance(high.value, int) else pool_min
    dssc = get("DISABLE_SERVER_SIDE_CURSORS")
    atomic = get("ATOMIC_REQUESTS")
    policy = ConnectionPolicy(
        conn_max_age=conn_max_age, conn_max_age_evidence=tuple(cma_ev), health_checks=bool(health and health.value is True),
        pool_min=pool_min, pool_max=pool_max, pool_evidence=pool_ev,
        health_checks_evidence=health.evidence if health else (),
        disable_server_side_cursors=bool(dssc and dssc.value is True), atomic_requests=bool(atomic and atomic.value is True),
        conn_max_age_known=known, conn_max_age_env=cma_env,
    )
    return policy, aliases


def django_facts(read: SettingsRead | None, choice: SettingsChoice | None, aliases: list[AliasFact]) -> DjangoFacts:
    if read is None:
        return DjangoFacts(settings_module=choice.module if choice else None, choice=choice.reason if choice else "")

    def value(name: str):  # noqa: ANN202
        v = read.get(name)
        return v.value if v is not None and v.known else None

    middleware = value("MIDDLEWARE") or []
    names = [m.value for m in middleware if isinstance(m, V) and isinstance(m.value, str)] if isinstance(middleware, list) else []
    evidence = []
    for name in ("CSRF_USE_SESSIONS", "SESSION_ENGINE"):
        v = read.get(name)
        if v is not None:
            evidence.extend(v.evidence[:1])
    concurrency = read.celery("worker_concurrency")
    pool = read.celery("worker_pool")
    scheduler = read.celery("beat_scheduler")
    backend = read.celery("result_backend")
    return DjangoFacts(
        settings_module=choice.module if choice else None,
        settings_files=tuple(read.evaluation.files),
        aliases=tuple(aliases),
        csrf_use_sessions=value("CSRF_USE_SESSIONS") is True,
        session_engine=value("SESSION_ENGINE") if isinstance(value("SESSION_ENGINE"), str) else None,
        login_required_middleware=any(n.endswith("LoginRequiredMiddleware") for n in names),
        celery_concurrency=Quantity(concurrency.value, concurrency.evidence) if concurrency is not None and isinstance(concurrency.value, int) else None,
        celery_pool=pool.value if pool is not None and isinstance(pool.value, str) else None,
        celery_beat_scheduler=scheduler.value if scheduler is not None and isinstance(scheduler.value, str) else None,
        celery_result_backend=backend.value if backend is not None and isinstance(backend.value, str) and not backend.value.startswith(("redis://", "amqp://")) else (None if backend is None or not backend.known else "(a URL)"),
        evidence=tuple(evidence),
        choice=choice.reason if choice else "",
    )


# ----------------------------------------------------------------------------- the server


@dataclasses.dataclass
class ServerFacts:
    slots: SlotBudget
    pgbouncer: PgbouncerSetup | None
    pgbouncer_hosts: set[str]
    unused_configs: list[Evidence]


def server_facts(s: Scan, compose: ComposeFile | None, notes: list[str]) -> ServerFacts:
    repo = s.repo
    settings: dict[str, tuple[int, Evidence]] = {}
    version: Quantity = Quantity(None, (), "server.version")
    superuser: str | None = None
    superuser_ev: tuple[Evidence, ...] = ()
    mounted: set[str] = set()
    has_server = False
    pgbouncer: PgbouncerSetup | None = None
    pgbouncer_hosts: set[str] = set()
    services = list(compose.services.values()) if compose else []
    for service in services:
        image = (service.image or "").lower()
        dockerfile = s.dockerfiles.get(service.dockerfile or "")
        base = " ".join(dockerfile.base_images) if dockerfile else ""
        if POSTGRES_IMAGES.search(image) or POSTGRES_IMAGES.search(base):
            has_server = True
            tag = re.search(r":(\d+)", image or base)
            if tag:
                version = Quantity(int(tag[1]), (Evidence(service.file, service.line, f"image {image or base}"),))
            env = env_files_env(s, service.env_files, notes).overlay(service.environment)
            user = env.get("POSTGRES_USER")
            missing = any(resolve_env_file(repo, rel)[0] is None for rel, _, _ in service.env_files)
            # The official image's superuser is POSTGRES_USER (default "postgres"); when it comes
            # from an env file that is not committed, the variable itself names the role.
            superuser = user.value if user else ("${POSTGRES_USER}" if missing else "postgres")
            superuser_ev = (user.evidence,) if user else (Evidence(service.file, service.line, f"service {service.name}", Resolution.LIBRARY_DEFAULT, "official image: POSTGRES_USER defaults to postgres"),)
            argv = service.command or []
            for name, raw in flags_from_argv(argv).items():
                if name in ("max_connections", "superuser_reserved_connections", "reserved_connections"):
                    try:
                        settings[name] = (int(raw), Evidence(service.file, service.command_line, repo.quote(service.file, service.command_line), Resolution.COMMAND_FLAG))
                    except ValueError:
                        pass
            conf_target = flags_from_argv(argv).get("config_file")
            for volume, _ in service.volumes:
                source, _, target = volume.partition(":")
                target = target.split(":")[0]
                folder = service.file.rsplit("/", 1)[0] if "/" in service.file else ""
                src = join(folder, source) if source.startswith(".") else source
                if repo.has(src) and (target.endswith("postgresql.conf") and (conf_target in (None, target) or "/docker-entrypoint" in target) or target == conf_target):
                    mounted.add(src)
                    for name, item in read_postgresql_conf(repo, src).items():
                        settings.setdefault(name, item)
                elif repo.has(src) and target.endswith(".conf"):
                    mounted.add(src)
            if dockerfile:
                for dest, src in dockerfile.copies.items():
                    if src.endswith("postgresql.conf") and (conf_target == dest or "/docker-entrypoint-initdb.d" in dest):
                        mounted.add(src)
        if PGBOUNCER_IMAGES.search(image) or "pgbouncer" in service.name.lower():
            env = env_files_env(s, service.env_files, notes).overlay(service.environment)
            found = pgbouncer_from_env(env)
            folder = service.file.rsplit("/", 1)[0] if "/" in service.file else ""
            ini_paths = [src for volume, _ in service.volumes for src in [join(folder, volume.split(":")[0])] if src.endswith(".ini") and repo.has(src)]
            for ini in ini_paths:
                ini_settings, _ = read_pgbouncer_ini(repo, ini)
                for key, item in ini_settings.items():
                    found.setdefault(key, item)
            pgbouncer = _pgbouncer_setup(found, service.name, Evidence(service.file, service.line, f"service {service.name} ({service.image or 'build'})"))
            pgbouncer_hosts.add(service.name)
    # Kubernetes: a pgbouncer deployment
    for container in s.manifests.containers:
        if container.image and PGBOUNCER_IMAGES.search(container.image):
            found = pgbouncer_from_env(container.env)
            pgbouncer = _pgbouncer_setup(found, container.workload, Evidence(container.path, container.line, f"{container.kind} {container.workload}"))
            pgbouncer_hosts.add(container.workload)
        elif container.image and POSTGRES_IMAGES.search(container.image):
            has_server = True
            for name, raw in flags_from_argv(container.argv or []).items():
                if name in ("max_connections", "superuser_reserved_connections", "reserved_connections") and raw.isdigit():
                    settings[name] = (int(raw), Evidence(container.path, container.line, f"-c {name}={raw}", Resolution.COMMAND_FLAG))
    unused = [
        Evidence(p, None, "a postgresql.conf that no service mounts: its settings are not in effect")
        for p in repo.paths if p.rsplit("/", 1)[-1] == "postgresql.conf" and p not in mounted and (compose is not None and has_server or read_postgresql_conf(repo, p))
    ]

    def q(name: str, default: int | None, unknown: str) -> Quantity:
        if name in settings:
            return Quantity(settings[name][0], (settings[name][1],))
        if has_server and default is not None:
            return Quantity(default, (Evidence("(PostgreSQL default)", None, f"{name} = {default}", Resolution.LIBRARY_DEFAULT),))
        if default is not None and name != "max_connections":
            return Quantity(default, (Evidence("(PostgreSQL default)", None, f"{name} = {default}", Resolution.LIBRARY_DEFAULT),))
        return Quantity(None, (), unknown)

    slots = SlotBudget(
        max_connections=q("max_connections", 100, "server.max_connections"),
        superuser_reserved_connections=q("superuser_reserved_connections", 3, "server.superuser_reserved_connections"),
        reserved_connections=q("reserved_connections", 0, "server.reserved_connections"),
        role_is_superuser=None, other_clients=Quantity(None, (), "server.other_clients"),
        server_version=version, role=superuser, role_evidence=superuser_ev,
    )
    if not has_server:
        notes.append("the PostgreSQL server is not part of the repository's deployment (external): its settings are unknowns")
    return ServerFacts(slots, pgbouncer, pgbouncer_hosts, unused)


def _pgbouncer_setup(found: dict, service: str, where: Evidence) -> PgbouncerSetup:
    def number(key: str) -> int | None:
        item = found.get(key)
        try:
            return int(item[0]) if item else None
        except ValueError:
            return None

    mode = found.get("pool_mode")
    evidence = (where,) + tuple(item[1] for item in found.values())
    return PgbouncerSetup(
        pool_mode=(mode[0].lower() if mode else "session"), default_pool_size=number("default_pool_size"),
        max_client_conn=number("max_client_conn"), max_db_connections=number("max_db_connections"),
        reserve_pool_size=number("reserve_pool_size"), pairs=(), evidence=evidence, service=service,
        min_pool_size=number("min_pool_size"),
    )


# ----------------------------------------------------------------------------- the whole


def build(root: Path) -> Topology:
    s = scan(root)
    notes = s.notes
    repo = s.repo
    # 1. the deployment description
    specs: list[ProcessSpec] = []
    compose: ComposeFile | None = None
    base_env = project_env(s, notes)
    if any(c.argv or True for c in s.manifests.containers):
        specs = [sp for sp in k8s_specs(s, base_env) if sp.words or True]
        if specs:
            s.sources.append("Kubernetes manifests: " + ", ".join(sorted({sp.source.path for sp in specs})))
    ranked = sorted(s.composes, key=lambda c: (-compose_score(c.path), -database_affinity(s, c), c.path))
    runnable = [c for c in ranked if any(not (sv.image and POSTGRES_IMAGES.search(sv.image)) for sv in c.services.values())]
    # A development stack (a local/CI/devcontainer compose file, or one that runs
    # `manage.py runserver`) is read only when nothing describes production.
    production = [c for c in runnable if not _development_compose(c)]
    development = [c for c in runnable if _development_compose(c)]
    compose = production[0] if production else None

    def use_compose(chosen: ComposeFile, why: str) -> list[ProcessSpec]:
        others = [c.path for c in ranked if c is not chosen]
        s.sources.append(f"{chosen.path} ({why}" + (f"; not used: {', '.join(others)}" if others else "") + ")")
        return compose_specs(s, chosen, notes)

    if not specs and compose is not None:
        specs = use_compose(compose, "the production compose file")
    if not specs:
        for rel in repo.named("Procfile"):
            specs = simple_specs(read_procfile(repo, rel), base_env, "Procfile")
            if specs:
                s.sources.append(rel)
                break
    if not specs:
        defs = [d for rel in repo.paths if rel.endswith((".conf", ".ini")) and "supervisor" in rel.lower() for d in read_supervisord(repo, rel)]
        specs = simple_specs(defs, base_env, "supervisord")
        if specs:
            s.sources.append("supervisord: " + ", ".join(sorted({d.path for d in defs})))
    if not specs:
        defs = [d for rel in repo.paths if rel.endswith(".service") for d in read_systemd(repo, rel)]
        specs = simple_specs(defs, base_env, "systemd")
        if specs:
            s.sources.append("systemd: " + ", ".join(sorted({d.path for d in defs})))
    if not specs:
        for rel, dockerfile in sorted(s.dockerfiles.items(), key=lambda item: (compose_score(item[0]) < -10, item[0])):
            if dockerfile.cmd and not POSTGRES_IMAGES.search(" ".join(dockerfile.base_images)):
                specs = [ProcessSpec("web", dockerfile.cmd, base_env.overlay(dockerfile.env), _cmd_evidence(s, dockerfile),
                                     Quantity(None, (), "web.hosts"), Quantity(1), entry_words=dockerfile.entrypoint, dockerfile=dockerfile, workdir=dockerfile.workdir or "")]
                s.sources.append(f"{rel} (CMD)")
                break
    if not specs and development:
        compose = development[0]
        specs = use_compose(compose, "a development compose file: nothing else describes the deployment")
    if specs and compose is not None and specs[0].source.path != compose.path:
        compose = None  # the deployment is not this compose file: its database service is not ours
    if base_env.sources and not (compose is not None and specs and specs[0].source.path == compose.path):
        notes.append(f"environment read from {', '.join(base_env.sources)} (the production env files in the repository)")
    specs = [each for spec in specs for each in (managed_specs(s, spec) or [spec])]
    resolved = [resolve(s, spec) for spec in specs]
    # 2. the settings, chosen from every process's environment
    envs = [r.env.process() for r in resolved] or [base_env]  # what the programs see: no shell-only variables
    choice = choose_settings(repo, s.resolver, envs)
    reads: dict[tuple, SettingsRead] = {}

    def settings_for(env: Env) -> SettingsRead | None:
        if choice is None:
            return None
        key = env.key()
        if key not in reads:
            reads[key] = read_settings(repo, choice, env, s.resolver, s.trees)
        return reads[key]

    server = server_facts(s, compose, notes)
    groups: list[ProcessGroup] = []
    left_out: list[Resolved] = []
    modelled_images: set[str] = set()  # Dockerfiles that run the project's Django or Celery
    main_read = settings_for(base_env if not resolved else resolved[0].env.process())
    for item in resolved:
        if item.launch is None:
            words = " ".join(item.spec.words or item.spec.entry_words or [])
            notes.append(f"{item.spec.name}: `{words[:60]}` is neither a program pgslots models nor a script in the repository; left out"
                         if words else f"{item.spec.name}: no start command found ({item.spec.source.location()})")
            continue
        read = settings_for(item.env.process())
        in_image = lambda word, spec=item.spec: locate(s, word, spec)  # noqa: E731
        shape = shape_of(item.launch, item.spec.name, item.env, item.where, repo, s.resolver, read, item.spec.workdir, in_image)
        if shape is None:
            left_out.append(item)
            continue
        if item.spec.dockerfile is not None:
            modelled_images.add(item.spec.dockerfile.path)
        policy, aliases = policy_from(read, notes)
        if shape.kind == "web" and (main_read is None or _is_web(item)):
            main_read = read
        groups.extend(_groups(item, shape, policy, aliases, server))
        beside = [(launch_from_words(split_words(command)), where) for command, where in shape.daemons] + item.companions
        for launch, where in beside:
            # A process the server's master keeps running beside its workers (uWSGI attach-daemon),
            # or one the start script sent to the background (`celery ... worker &`).
            label = launch.positionals[0] if launch.program == "manage" and launch.positionals else launch.program
            spec = dataclasses.replace(item.spec, name=f"{item.spec.name}/{label}")
            daemon = shape_of(launch, spec.name, item.env, where, repo, s.resolver, read, item.spec.workdir, in_image)
            if daemon is None:
                notes.append(f"{item.spec.name}: `{launch.text[:60]}` ({where.location()}) is not a process pgslots models; left out")
                continue
            groups.extend(_groups(dataclasses.replace(item, spec=spec, launch=launch, where=where), daemon, policy, aliases, server))
    for item in left_out:
        assert item.launch is not None
        if item.spec.dockerfile is None or item.spec.dockerfile.path not in modelled_images:
            notes.append(f"{item.spec.name}: `{item.launch.text[:80]}` is not a server pgslots models; left out")
            continue
        # The project's own image running a program we cannot read: unknown, not zero.
        _, aliases = policy_from(settings_for(item.env.process()), [])
        groups.extend(_groups(item, unmodelled(item.launch, item.spec.name, item.where), ConnectionPolicy(), aliases, server))
    facts = django_facts(main_read, choice, policy_from(main_read, [])[1] if main_read else [])
    if choice is None:
        notes.append("no Django settings module found")
    if main_read is not None:
        notes.extend(main_read.evaluation.notes[:20])
    # 3. the role the app connects as
    slots = server.slots
    default_alias = next((a for a in facts.aliases if a.name == "default"), None)
    if default_alias is not None and slots.role is not None and default_alias.user and (
        not default_alias.user.startswith("$") or default_alias.user.startswith("${")
    ):
        slots = dataclasses.replace(slots, role_is_superuser=(default_alias.user == slots.role), role=default_alias.user,
                                    role_evidence=slots.role_evidence + default_alias.evidence[:1])
    elif default_alias is not None and default_alias.user and (not default_alias.user.startswith("$") or default_alias.user.startswith("${")):
        slots = dataclasses.replace(slots, role=default_alias.user, role_evidence=default_alias.evidence[:1])
    else:
        slots = dataclasses.replace(slots, role=None)
    topology = Topology(
        root=str(root), groups=tuple(groups), slots=slots, settings_module=choice.module if choice else None,
        pgbouncer=server.pgbouncer, versions=tuple(read_versions(repo)), notes=tuple(dict.fromkeys(notes)),
        read_errors=tuple(repo.read_errors), django=facts, sources=tuple(s.sources),
        unused_configs=tuple(server.unused_configs),
    )
    if server.pgbouncer is not None:
        pairs = _pairs(topology)
        topology = dataclasses.replace(topology, pgbouncer=dataclasses.replace(server.pgbouncer, pairs=pairs))
    return budget.recompute(topology)


def _pairs(topology: Topology) -> tuple[str, ...]:
    alias = next((a for a in (topology.django.aliases if topology.django else ()) if a.name == "default"), None)
    if alias is None:
        return ("?/?",)
    return (f"{alias.database or '?'}/{alias.user or '?'}",)


def _is_web(item: Resolved) -> bool:
    return item.launch is not None and item.launch.program in ("gunicorn", "uvicorn", "daphne", "hypercorn", "granian", "uwsgi")


def _groups(item: Resolved, shape: Shape, policy: ConnectionPolicy, aliases: list[AliasFact], server: ServerFacts) -> list[ProcessGroup]:
    spec = item.spec
    same = tuple(a.name for a in aliases if a.same_server is True and not (a.engine or "").startswith(("django.db.backends.sqlite", "(scheme")))
    default = next((a for a in aliases if a.name == "default"), None)
    via = False
    if default is not None and default.host:
        host = default.host.lower()
        via = host in {h.lower() for h in server.pgbouncer_hosts} or "pgbouncer" in host or (default.port or "") == "6432"
    if via and server.pgbouncer is not None:
        policy = dataclasses.replace(policy, via_pgbouncer=True, pgbouncer_pool_mode=server.pgbouncer.pool_mode)
    hosts = spec.hosts
    notes = list(shape.notes)
    if shape.kind == "beat":
        hosts = Quantity(1, (), None)
        notes.append("beat must run exactly once per deployment")
    elif shape.concurrency_model == "job":
        hosts = Quantity(1, (), None)  # a deploy job runs once, wherever
    evidence = [item.where] + [e for q in (shape.processes, shape.per_process) for e in q.evidence] + item.script_evidence
    if shape.concurrency_model != "none":
        evidence += list(policy.conn_max_age_evidence[:1]) + list(policy.pool_evidence[:1])
    by_location: dict[str, Evidence] = {}
    for found in evidence:
        by_location.setdefault(found.location(), found)  # one line cited once
    group = ProcessGroup(
        name=spec.name, kind=shape.kind, server_model=shape.server_model, hosts=hosts, processes=shape.processes,
        per_process=shape.per_process, aliases=same or ("default",), policy=policy, demand=Demand(0, 0),
        evidence=tuple(by_location.values()), command=item.launch.text if item.launch else "",
        concurrency_model=shape.concurrency_model, replicas=spec.replicas, max_replicas=spec.max_replicas,
        source=spec.source.location(), notes=tuple(notes),
    )
    out = [group]
    beat = shape.extra_beat
    if beat is not None:
        # Every worker container runs its own embedded beat (so several hosts schedule twice).
        out.append(dataclasses.replace(group, name=f"{spec.name}-beat", kind="beat", server_model=f"{beat.server_model} embedded (-B)",
                                       concurrency_model=beat.concurrency_model, processes=Quantity(1), per_process=beat.per_process,
                                       notes=("embedded beat (worker -B)", *beat.notes)))
    return out
