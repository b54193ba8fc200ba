"""Discovery: which deployment files the repository holds, and which of them describe the
deployment to audit.

Scans the tree once (Dockerfiles, compose files, Kubernetes manifests, Helm values), then
chooses the deployment description in this order: Kubernetes manifests, the production
compose file, a Procfile, supervisord, systemd units, a Dockerfile's CMD, and only then a
development compose file. Each process it defines becomes a `ProcessSpec`: the command as
written, the environment the container or unit gives it (image ENV < env_file <
environment), and how many run. How each one really starts is `processes.py`'s concern.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from pgslots.deploy.model import Quantity
from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.ansible import render_unit_templates
from pgslots.deploy.readers.commands import split_words
from pgslots.deploy.readers.docker import (
    ComposeFile,
    Dockerfile,
    Service,
    compose_score,
    container_command,
    is_compose_file,
    read_compose,
    read_dockerfile,
)
from pgslots.deploy.readers.envfiles import (
    MISSING_ENV,
    Env,
    EnvValue,
    is_env_file,
    parse_env_file,
    production_score,
    resolve_env_file,
)
from pgslots.deploy.readers.helm import HelmChart, read_charts, read_trays
from pgslots.deploy.readers.iac import read_iac_apps
from pgslots.deploy.readers.imagebuilds import script_builds
from pgslots.deploy.readers.kubernetes import (
    Manifests,
    apply_overlay,
    looks_like_helm_values,
    looks_like_manifest,
    read_helm_values,
    read_manifests,
)
from pgslots.deploy.readers.kustomize import Plan, read_plan
from pgslots.deploy.readers.platforms import ImageProcess
from pgslots.deploy.readers.pyeval import ModuleResolver
from pgslots.deploy.readers.workflows import published_images
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
    command_at: Evidence | None = (
        None  # where `words` were written, when not at `source` (a Dockerfile's CMD)
    )
    unknown_reason: str = (
        ""  # set when pgslots cannot see what it runs: an unknown group, never a zero
    )
    client: str = ""  # "backup" (pg_dump), "other-app" (an image this repository does not build that talks to the database)
    client_evidence: Evidence | None = None
    third_party: bool = False  # an image the repository does not build: counted only if it talks to the database or nothing else runs
    image: str = ""  # the image it runs, as written
    unit: str = ""  # the deployment unit it belongs to
    oneshot: str = ""  # "cron" (a cron entry), "deploy" (a release/predeploy hook), "boot" (systemd Type=oneshot): it runs, then exits
    entry_at: Evidence | None = (
        None  # where `entry_words` were written (a Dockerfile's ENTRYPOINT, compose `entrypoint:`)
    )


@dataclasses.dataclass
class Scan:
    """Everything read from the repository, before the model."""

    repo: RepoFiles
    resolver: ModuleResolver
    dockerfiles: dict[str, Dockerfile]
    composes: list[ComposeFile]
    manifests: Manifests
    notes: list[str]  # what the scan itself learnt (Helm values it cannot place)
    charts: list[HelmChart] = dataclasses.field(
        default_factory=list
    )  # Helm charts with templated workloads
    templates: frozenset[str] = (
        frozenset()
    )  # Ansible unit templates (`*.service.j2`), read as rendered
    tagged: dict[str, tuple[str, str]] | None = (
        None  # images tagged by build scripts and CI (tagged_images)
    )


POSTGRES_IMAGES = re.compile(
    r"(^|/)(postgres|postgis|timescaledb|timescaledb-ha|postgresql|pgvector)(:|$)|bitnami/postgresql|supabase/postgres"
)
PGBOUNCER_IMAGES = re.compile(r"pgbouncer")


def scan(root: Path) -> Scan:
    repo = RepoFiles.scan(root)
    dockerfiles = {}
    for rel in repo.paths:
        name = rel.rsplit("/", 1)[-1]
        if (
            name in ("Dockerfile", "Containerfile")
            or name.startswith(("Dockerfile.", "Dockerfile-", "Containerfile."))
            or name.endswith(".Dockerfile")
        ):
            dockerfile = read_dockerfile(repo, rel)
            if dockerfile:
                dockerfiles[rel] = dockerfile
    composes: list[ComposeFile] = []
    for rel in repo.paths:
        if is_compose_file(rel):
            parsed = read_compose(repo, rel)
            if parsed is not None:
                composes.append(parsed)
    manifests = Manifests()
    skipped: list[str] = []
    plan = read_plan(repo)
    overlay_notes: list[str] = []
    for rel in repo.paths:
        if plan is not None and rel in plan.skipped:
            continue  # a kustomize patch, or a manifest only another overlay reaches
        if (
            rel.endswith((".yml", ".yaml"))
            and not is_compose_file(rel)
            and not rel.startswith((".github/", ".gitlab", ".circleci/"))
        ):
            text = repo.text(rel) or ""
            if looks_like_manifest(text) and NOT_DEPLOYED.search(rel):
                skipped.append(rel)  # sample objects of a test suite or documentation
            elif looks_like_manifest(text):
                read_manifests(repo, rel, manifests)
            elif (
                COMPOSE_CONTENT.search(text)
                and (parsed := read_compose(repo, rel)) is not None
                and any(sv.image or sv.dockerfile for sv in parsed.services.values())
            ):
                composes.append(
                    parsed
                )  # a compose file by content (cookiecutter-django's production.yml)
            elif looks_like_helm_values(rel, text):
                read_helm_values(repo, rel, manifests)
    if plan is not None:
        overlay_notes = kustomize_notes(plan) + apply_overlay(repo, plan, manifests)
    chart_notes: list[str] = overlay_notes
    charts = (
        read_charts(repo, NOT_DEPLOYED, chart_notes)
        + read_trays(repo, NOT_DEPLOYED)
        + read_iac_apps(repo, NOT_DEPLOYED)
    )
    in_charts = {rel for chart in charts for rel in chart.values + chart.alternatives}
    notes = chart_notes + [
        f"Helm values {rel}:{line}: {key} = {value} (the chart's templates decide which workload it scales; "
        "supply it with --assume NAME.replicas=N)"
        for rel, key, value, line in manifests.helm_values
        if rel not in in_charts
    ]
    notes.extend(yaml_tag_notes(repo))
    if skipped:
        notes.append(
            f"Kubernetes objects under test, example or documentation folders are not the deployment: "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}"
        )
    committed = set(repo.paths)
    for rel in named_dockerfiles(composes):
        if (
            rel not in dockerfiles
            and rel in committed
            and (dockerfile := read_dockerfile(repo, rel))
        ):
            dockerfiles[rel] = dockerfile
    templates = frozenset(render_unit_templates(repo, notes))
    return Scan(
        repo, ModuleResolver(repo), dockerfiles, composes, manifests, notes, charts, templates
    )


def named_dockerfiles(composes: list[ComposeFile]) -> list[str]:
    """The files compose services build from (`build.dockerfile`), whatever their names: a
    Dockerfile named `docker/ProdDjangoDockerfile` is one because the compose file says so."""
    return sorted(
        {sv.dockerfile for compose in composes for sv in compose.services.values() if sv.dockerfile}
    )


def kustomize_notes(plan: Plan) -> list[str]:
    """Which kustomize overlay is the deployment, and which are not."""
    if plan.chosen is None:
        return []
    notes = [
        f"kustomize: {plan.chosen.path} is the overlay read (a leaf"
        + (" named for production" if re.search(r"prod|live|prd", plan.chosen.folder, re.I) else "")
        + ")"
        + (f"; alternatives not used: {', '.join(plan.alternatives)}" if plan.alternatives else "")
    ]
    notes.extend(
        f"kustomize {e.location()}: {e.text} (kustomize's images: rename)" for e in plan.images[:3]
    )
    return notes


def yaml_tag_notes(repo: RepoFiles) -> list[str]:
    """One note per file with custom YAML tags: the file was read, the tagged values are filled in
    by another tool at deploy time (so what they hold is not known here)."""
    by_file: dict[str, list[str]] = {}
    for evidence in repo.yaml_tags:
        by_file.setdefault(evidence.path, []).append(f"{evidence.text} at line {evidence.line}")
    return [
        f"{rel}: custom YAML tags {', '.join(tags[:6])}{' ...' if len(tags) > 6 else ''} are filled in by another tool at "
        "deploy time; the file was read with each tagged value as written"
        for rel, tags in by_file.items()
    ]


# ----------------------------------------------------------------------------- projects

COMPOSE_CONTENT = re.compile(r"^services:[ \t]*(#.*)?$", re.M)
NOT_DEPLOYED = re.compile(
    r"(^|/)(tests?|unittests?|testing|testdata|test_data|fixtures?|examples?|docs?|samples?|scans?|e2e)/",
    re.I,
)

NOT_A_PROJECT = re.compile(
    r"(^|/)(tests?|testing|testproject|test_project|examples?|demo|docs?|samples?|fixtures?|"
    r"templates?|cookiecutter[^/]*|\{\{[^/]*)/",
    re.I,
)


def project_roots(s: Scan) -> list[str]:
    """The folders of the Django projects in the tree: each `manage.py` outside tests,
    examples, documentation and templates, keeping only the outermost of nested ones."""
    managers = [rel for rel in s.repo.named("manage.py") if not NOT_A_PROJECT.search(rel)]
    roots = sorted({rel.rsplit("/", 1)[0] if "/" in rel else "" for rel in managers})
    outer = [
        r
        for r in roots
        if not any(r != other and (other == "" or r.startswith(other + "/")) for other in roots)
    ]
    if len(outer) < 2:
        return outer
    # Variants of one project (the same settings module in two images' folders) are one project.
    modules = set()
    for root in outer:
        found = re.search(
            r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)",
            s.repo.text(join(root, "manage.py")) or "",
        )
        modules.add(found[1] if found else root)
    return outer if len(modules) > 1 else outer[:1]


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
                env.set(
                    EnvValue(MISSING_ENV, missing, Evidence(rel, None, why, Resolution.ENV_FILE))
                )
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
    development = {
        rel
        for c in s.composes
        if development_reasons(s, c)
        for sv in c.services.values()
        for rel, _, _ in sv.env_files
    }
    production = {
        rel
        for c in s.composes
        if not development_reasons(s, c)
        for sv in c.services.values()
        for rel, _, _ in sv.env_files
    }
    candidates = [
        p
        for p in s.repo.paths
        if is_env_file(p) and production_score(p) >= 0 and (p not in development or p in production)
    ]
    if not candidates:
        return Env()
    real = set(candidates)
    best = sorted(candidates, key=lambda p: (-production_score(p), p.count("/"), "example" in p, p))
    chosen: list[str] = []
    top = production_score(best[0])
    for path in best:
        if production_score(path) < top or (production_score(path) < 0 and top >= 0):
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


DEV_TARGETS = re.compile(
    r"(^|[-_])(dev|develop|development|local|test|tests|debug|ci)($|[-_])", re.I
)
DEV_COMMENT = re.compile(
    r"#.*\b(do not|don't|never|not) (use )?(this )?(file )?(it )?(in|for) production|#.*\b(local )?development only\b|"
    r"#.*\bonly for (local )?development\b|#.*\bdev(elopment)? purposes",
    re.I,
)
DEV_HEADER = re.compile(r"\b(development|developers?|dev environment|local dev|hacking)\b", re.I)
DEV_FILE = re.compile(
    r"(^|/)(dev|local|development)/|(^|[./_-])(dev|local|development)([./_-]|$)", re.I
)
DEV_MODULE = re.compile(r"\.(dev|local|development|test|tests|testing|ci)$", re.I)
TRUE_WORDS = {"true", "1", "yes", "on"}
SOURCE_TARGETS = ("/app", "/code", "/src", "/srv", "/usr/src/app", "/opt/app", "/home/app")


def development_reasons(s: Scan, compose: ComposeFile, strong_only: bool = False) -> list[str]:
    """Why a compose deployment is for developers, read from its content: the development
    server or auto-reload, a `dev` build stage, DEBUG on, a dev settings module, a comment that
    says "not for production" (strong); the source bind-mounted over the image's, a dev
    Dockerfile, a header about development, a development name or folder (weak: a file named
    for production keeps them). Empty: production."""
    strong: list[str] = []
    weak: list[str] = []
    for service in compose.services.values():
        # Inside `bash -c "wait-for-it db:5432 -- python manage.py runserver 0:7001"` too.
        words = re.split(
            r"[\s;&|()]+", " ".join((service.command or []) + (service.entrypoint or []))
        )
        dev = next((w for w in words if w in ("runserver", "runserver_plus", "--reload")), None)
        if dev:
            strong.append(
                f"{service.name} runs `{dev}` ({service.command_file}:{service.command_line or service.line})"
            )
        if service.target and DEV_TARGETS.search(service.target):
            strong.append(
                f"{service.name} builds the `{service.target}` stage ({service.file}:{service.line})"
            )
        module = service.environment.get("DJANGO_SETTINGS_MODULE")
        if module is not None and DEV_MODULE.search(module.value or ""):
            strong.append(
                f"{service.name} runs the settings {module.value} ({module.evidence.location()})"
            )
        debug = next(
            (
                service.environment.get(k)
                for k in ("DEBUG", "DJANGO_DEBUG")
                if service.environment.get(k)
            ),
            None,
        )
        if debug is not None and (debug.value or "").strip().lower() in TRUE_WORDS:
            strong.append(
                f"{service.name} sets {debug.name}={debug.value} ({debug.evidence.location()})"
            )
        if service.dockerfile and DEV_FILE.search(service.dockerfile):
            weak.append(
                f"{service.name} builds from {service.dockerfile} ({service.file}:{service.line})"
            )
        if service.dockerfile or service.command:
            folder = service.file.rsplit("/", 1)[0] if "/" in service.file else ""
            dockerfile = s.dockerfiles.get(service.dockerfile or "")
            targets = SOURCE_TARGETS + (
                (dockerfile.workdir.rstrip("/"),) if dockerfile and dockerfile.workdir else ()
            )
            for volume, line, written_in in service.volumes:
                source, _, target = volume.partition(":")
                target = target.split(":")[0].rstrip("/")
                root = join(folder, source) == ""  # the whole repository
                if source.startswith(".") and (
                    root or (target in targets and _holds_code(s, join(folder, source)))
                ):
                    weak.append(
                        f"{service.name} bind-mounts the source {source}:{target} ({written_in}:{line})"
                    )
                    break
    paths = (compose.path, *compose.overlays)
    for path in paths:
        for number, text in enumerate(s.repo.lines(path), 1):
            if DEV_COMMENT.search(text):
                strong.append(f"{path}:{number} says `{text.strip()[:70]}`")
                break
            if (
                number <= 5
                and text.lstrip().startswith("#")
                and DEV_HEADER.search(text)
                and "production" not in text.lower()
            ):
                weak.append(f"{path}:{number} says `{text.strip()[:70]}`")
                break
    score = max(compose_score(p) for p in paths)
    if not strong and not weak and score <= -10:
        weak.append(f"{compose.path} is named or placed as a development, test or CI file")
    reasons = strong + ([] if score >= 10 or strong_only else weak)
    return list(dict.fromkeys(reasons))


def _holds_code(s: Scan, folder: str) -> bool:
    """A repository folder with the project's Python code in it (bind-mounting it replaces the image's)."""
    prefix = "" if folder in ("", ".") else folder.rstrip("/") + "/"
    return any(p.startswith(prefix) and p.endswith(".py") for p in s.repo.paths)


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


VERSION_TAG = re.compile(
    r"^(v?\d[\w.+-]*|latest|stable|edge|main|master|dev|develop|nightly|\$.*"
    r"|[\w.-]*(alpine|slim|bookworm|bullseye|buster|jammy|focal|noble|trixie)[\w.-]*)$"
)


def image_dockerfile(s: Scan, image: str) -> tuple[Dockerfile, str] | None:
    """The repository Dockerfile a prebuilt image comes from, and why we think so: another
    service builds that image, its tag names a Dockerfile's folder or suffix, or a Dockerfile
    labels itself as the image's source
    (`LABEL org.opencontainers.image.source=https://github.com/org/app` for `ghcr.io/org/app`)."""
    name = _image_name(image)
    built = built_images(s).get(name)
    if built:
        return s.dockerfiles[
            built
        ], f"image {name} is built from {built} by another compose service"
    # `app:database-migration` (a role, not a version) from `bin/database-migration/Dockerfile`:
    # the tag names the one Dockerfile built for that role.
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2].lower()
    if tag and not VERSION_TAG.match(tag) and "/" in name:  # not an official image (`redis:alpine`)
        by_tag = [p for p in sorted(s.dockerfiles) if tag in _dockerfile_names(p)]
        if len(by_tag) == 1:
            return s.dockerfiles[by_tag[0]], f"the tag of image {image} names {by_tag[0]}"
    tagged = tagged_images(s).get(_short_name(name))
    if tagged and tagged[0] in s.dockerfiles:
        return s.dockerfiles[tagged[0]], f"image {name} is built from {tagged[0]} ({tagged[1]})"
    family = _family_dockerfile(s, name)
    if family is not None:
        return family
    tail = "/".join(name.split("/")[-2:]).lower()
    owner = tail.split("/")[0] if "/" in tail else ""
    labelled = [
        (path, dockerfile, source)
        for path, dockerfile in sorted(s.dockerfiles.items())
        for source in dockerfile.sources
    ]
    for path, dockerfile, source in labelled:
        if source.lower().rstrip("/").endswith("/" + tail):
            return dockerfile, f"{path} is labelled as the source of image {name}"
    # `ghcr.io/goauthentik/server` from a Dockerfile labelled github.com/goauthentik/authentik:
    # the same owner publishes it, and it is the only Dockerfile that says so.
    same_owner = {
        path: dockerfile
        for path, dockerfile, source in labelled
        if owner and f"/{owner}/" in source.lower() + "/"
    }
    if len(same_owner) == 1:
        path, dockerfile = next(iter(same_owner.items()))
        return dockerfile, f"{path} is labelled as built by {owner}, who publishes image {name}"
    # `baserow/backend` from `backend/Dockerfile` (or `Dockerfile.backend`): the one Dockerfile
    # named like the image.
    last = name.rsplit("/", 1)[-1].lower()
    named = [
        path
        for path in sorted(s.dockerfiles)
        if last in _dockerfile_names(path) and not infra_base(s.dockerfiles[path])
    ]
    if len(named) == 1:
        return s.dockerfiles[named[0]], f"{named[0]} is named like image {name}"
    return None


BUILD_FILES = re.compile(
    r"(^|/)(Makefile|[^/]*\.mk|[^/]*\.sh|\.gitlab-ci\.ya?ml)$|^\.github/workflows/[^/]+\.ya?ml$"
)
IMAGE_WORD = re.compile(
    r"['\"]?((?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9._-]+/[a-z0-9._-]+)(?::[\w.${}()-]+)?['\"]?"
)


def _short_name(name: str) -> str:
    """`docker.io/umap/umap` and `umap/umap` name the same image: compare owner/name."""
    return "/".join(name.lower().split("/")[-2:])


def tagged_images(s: Scan) -> dict[str, tuple[str, str]]:
    """Images the repository builds and tags outside compose: `docker build -t org/app .` in a
    Makefile or script, `images: ghcr.io/org/app` in a CI workflow (owner/name -> Dockerfile, where)."""
    if s.tagged is not None:
        return s.tagged
    out: dict[str, tuple[str, str]] = {}
    for rel in s.repo.paths:
        if not BUILD_FILES.search(rel):
            continue
        text = s.repo.text(rel) or ""
        for build in script_builds(rel, text):
            for tag in build.tags:
                found = IMAGE_WORD.fullmatch(tag.strip("'\""))
                name = _short_name(found[1]) if found else ""
                if found and (
                    name not in out
                    or (_dev_dockerfile(out[name][0]) and not _dev_dockerfile(build.dockerfile))
                ):
                    # a release build (web/Dockerfile) over a rolling one (web/Dockerfile.dev) of the same name
                    out[name] = (build.dockerfile, f"{rel}:{build.line} {build.how}")
        if rel.startswith(".github/workflows/"):
            for image in published_images(s.repo, rel):
                out.setdefault(
                    _short_name(image.name), (image.dockerfile, f"{rel}:{image.line} publishes it")
                )
    s.tagged = out
    return out


VARIANT_SUFFIXES = ("dev", "development", "test", "testing", "debug", "local", "ci")


def _family_dockerfile(s: Scan, name: str) -> tuple[Dockerfile, str] | None:
    """`mathesar/mathesar` when the repository builds `mathesar/mathesar-dev` (and `-test`) from
    stages of one multi-stage Dockerfile: the published image is that Dockerfile's last stage
    (its default build), the variants being its development and test targets."""
    variants = {
        path
        for built, path in built_images(s).items()
        if any(built == f"{name}-{suffix}" for suffix in VARIANT_SUFFIXES)
    }
    if len(variants) != 1:
        return None
    path = next(iter(variants))
    dockerfile = s.dockerfiles[path]
    if len(dockerfile.stages) < 2:
        return None
    return dockerfile, (
        f"image {name} is the default build of {path}, whose development/test targets the "
        f"repository builds as {name}-<variant>"
    )


def _dev_dockerfile(path: str) -> bool:
    """`Dockerfile.dev`, `dev.Dockerfile`, `Dockerfile-development`: a development build."""
    return bool(
        re.search(
            r"(^|[./_-])(dev|develop|development|local)([./_-]|$)", path.rsplit("/", 1)[-1].lower()
        )
    )


def _dockerfile_names(path: str) -> set[str]:
    """What a Dockerfile's path calls the image: its folder (`backend/Dockerfile`) or its
    suffix (`Dockerfile.backend`, `backend.Dockerfile`)."""
    parts = path.lower().split("/")
    base = parts[-1]
    names = {parts[-2]} if len(parts) > 1 and base == "dockerfile" else set()
    if base.startswith("dockerfile."):
        names.add(base[len("dockerfile.") :])
    if base.endswith(".dockerfile"):
        names.add(base[: -len(".dockerfile")])
    return names


DB_CLIENT_KEYS = re.compile(
    r"DATABASE|POSTGRES|^PG(HOST|USER|DATABASE|PASSWORD|PORT)$|^DB_|_DB_|SQL_ALCHEMY|^DJANGO_", re.I
)
# Crontab files in the repository, read for pg_dump lines (`units.cron_backups`).
CRON_FILES = re.compile(
    r"(^|/)(crontab|[^/]*\.cron|[^/]*crontab[^/]*)$|(^|/)cron\.(d|daily|hourly|weekly)/[^/]+$"
)

BACKUP_PROGRAMS = re.compile(r"(^|[\s/;&|(])(pg_dump|pg_dumpall|pg_basebackup)(\s|$|;)")
DATABASE_SERVERS = re.compile(
    r"postgres|postgis|pgautoupgrade|timescale|pgvector|citus|cockroach|yugabyte|crunchy|"
    r"(^|/)(mysql|mariadb|percona|mongo|sqlserver|mssql)(:|$)",
    re.I,
)
BACKUP_IMAGES = re.compile(r"postgres-backup|pg-?backup|pgbackrest|wal-g|barman")


def database_client_evidence(compose: ComposeFile, service: Service, env: Env) -> Evidence | None:
    """Where a service shows it talks to PostgreSQL: a database variable in its own
    `environment:` (`DATABASE_URL`, `POSTGRES_*`, `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`; an
    env_file shared with the project's services proves nothing), or `depends_on` the compose
    file's PostgreSQL service."""
    found = _client_in_env(env)
    if found is not None:
        return found
    servers = {
        name
        for name, sv in compose.services.items()
        if sv.image and POSTGRES_IMAGES.search(sv.image)
    }
    if servers & set(service.depends_on):
        return Evidence(
            service.file,
            service.line,
            f"service {service.name} depends_on {', '.join(sorted(servers & set(service.depends_on)))}",
        )
    return None


def compose_specs(s: Scan, compose: ComposeFile, notes: list[str]) -> list[ProcessSpec]:
    """The process definitions of one compose deployment. A service that runs the project's
    image or code is followed through its Dockerfile; one that runs another image but talks to
    PostgreSQL (a second application, a backup job) is a client too: an unknown group when
    pgslots cannot see what it runs, never left out."""
    notes.extend(compose.notes)
    specs = []
    for service in compose.services.values():
        if service.profiles and not set(service.profiles) & compose.active_profiles:
            notes.append(
                f"{service.name}: only with profile {', '.join(service.profiles)} ({service.file}:{service.line}), "
                "which COMPOSE_PROFILES does not activate: not started"
            )
            continue
        if service.scale == 0:
            continue
        words = (service.entrypoint or []) + (service.command or [])
        scale = (
            Quantity(
                service.scale,
                (
                    Evidence(
                        service.file,
                        service.scale_line,
                        s.repo.quote(service.file, service.scale_line),
                    ),
                ),
            )
            if service.scale is not None
            else Quantity(1)
        )
        source = Evidence(service.file, service.line, f"service {service.name}")
        image = service.image or ""
        if BACKUP_PROGRAMS.search(" ".join(words)) or (
            BACKUP_IMAGES.search(image) and service.dockerfile is None
        ):
            env = (
                env_files_env(s, service.env_files, notes).overlay(service.environment).completed()
            )
            specs.append(
                ProcessSpec(
                    name=service.name,
                    words=service.command,
                    env=env,
                    source=source,
                    hosts=Quantity(1, (), None),
                    replicas=scale,
                    client="backup",
                    command_at=_command_evidence(s, service),
                )
            )
            continue
        if image and (
            POSTGRES_IMAGES.search(image)
            or PGBOUNCER_IMAGES.search(image)
            or DATABASE_SERVERS.search(image)
        ):
            continue  # a database server (or pgbouncer) is never a client of itself
        if image and service.dockerfile is None and INFRA_IMAGES.search(image.rsplit("/", 1)[-1]):
            continue  # redis, nginx, traefik...: their command is the image's own arguments
        if (
            service.dockerfile
            and service.dockerfile not in s.dockerfiles
            and not words
            and (
                INFRA_IMAGES.search(service.dockerfile.rsplit("/", 1)[-1])
                or INFRA_IMAGES.search(image.rsplit("/", 1)[-1])
            )
        ):
            continue  # `Dockerfile.nginx-${OS}`: a proxy built by the project
        dockerfile = s.dockerfiles.get(service.dockerfile or "")
        linked = None
        if dockerfile is None and service.dockerfile is None and image:
            linked = _built_here(s, compose, image) or image_dockerfile(s, image)
            if linked is not None:
                dockerfile = linked[0]
                notes.append(f"{service.name}: {linked[1]}; its ENV, COPY and CMD were used")
        start = dockerfile.start(service.target) if dockerfile else None
        if dockerfile is not None and (
            infra_base(dockerfile)
            or (
                dockerfile.base_images
                and (
                    POSTGRES_IMAGES.search(dockerfile.base_images[-1])
                    or PGBOUNCER_IMAGES.search(dockerfile.base_images[-1])
                )
            )
        ):
            continue  # the database server, pgbouncer or a proxy, built with the project's own config
        env = dockerfile.env_of(service.target) if dockerfile else Env()
        # The image's ENV, the env files and `environment:` are the container's whole
        # environment (unless an env file is missing).
        env = (
            env.overlay(env_files_env(s, service.env_files, notes))
            .overlay(service.environment)
            .completed()
        )
        # Docker's and compose's rules decide what the container runs (ENTRYPOINT + CMD).
        runs = container_command(start, dockerfile.path if dockerfile else None, service)
        notes.extend(runs.notes)
        unknown_reason = ""
        client = None
        if dockerfile is None and service.dockerfile is None:
            # An image this repository does not build: the project's own (published elsewhere)
            # or another application. Either way, if it talks to the database it is a client.
            client = database_client_evidence(compose, service, service.environment)
            if not words:
                unknown_reason = (
                    f"runs image {image or '(none)'}, which this repository does not build, with the image's own command"
                    + (f"; it connects to the database ({client.location()})" if client else "")
                    + ": what it runs and how many connections it opens cannot be read"
                )
        elif not (runs.command or runs.entrypoint):
            unknown_reason = (
                f"built from {dockerfile.path if dockerfile else service.dockerfile}, which "
                + ("has no CMD or ENTRYPOINT" if dockerfile else "is not in the repository")
                + ", and the service gives no command"
            )
        if linked is not None and dockerfile is not None and not runs_project_code(s, dockerfile):
            # An image the repository builds for another application (mailman-core beside
            # mailman-web): a client when its own environment names the database.
            client = database_client_evidence(compose, service, service.environment)
        specs.append(
            ProcessSpec(
                name=service.name,
                words=runs.command or None,
                env=env,
                source=source,
                hosts=Quantity(None, (), f"{service.name}.hosts"),
                replicas=scale,
                entry_words=runs.entrypoint or None,
                dockerfile=dockerfile,
                workdir=(dockerfile.workdir or "") if dockerfile else "",
                command_at=_at(s, runs.command_at),
                entry_at=_at(s, runs.entrypoint_at),
                unknown_reason=unknown_reason,
                client="other-app" if client is not None else "",
                client_evidence=client,
                third_party=dockerfile is None and service.dockerfile is None,
                image=image,
            )
        )
    return specs


def _built_here(s: Scan, compose: ComposeFile, image: str) -> tuple[Dockerfile, str] | None:
    """The Dockerfile another service of the same deployment builds `image` from (an overlay's `build:`)."""
    name = _image_name(image)
    for other in compose.services.values():
        if other.image and other.dockerfile in s.dockerfiles and _image_name(other.image) == name:
            return s.dockerfiles[
                other.dockerfile
            ], f"image {name} is built from {other.dockerfile} by service {other.name}"
    return None


def _command_evidence(s: Scan, service: Service) -> Evidence:
    line = service.command_line or service.line
    return Evidence(service.command_file, line, s.repo.quote(service.command_file, line))


def _at(s: Scan, where: tuple[str, int | None] | None) -> Evidence | None:
    return Evidence(where[0], where[1], s.repo.quote(where[0], where[1])) if where else None


def cmd_evidence(s: Scan, dockerfile: Dockerfile) -> Evidence:
    return Evidence(
        dockerfile.path, dockerfile.cmd_line, s.repo.quote(dockerfile.path, dockerfile.cmd_line)
    )


def infra_base(dockerfile: Dockerfile) -> bool:
    """A Dockerfile that only configures a database, proxy or broker image."""
    base = dockerfile.base_images[-1] if dockerfile.base_images else ""
    return bool(
        POSTGRES_IMAGES.search(base) or PGBOUNCER_IMAGES.search(base) or INFRA_IMAGES.search(base)
    )


INFRA_IMAGES = re.compile(
    r"nginx|redis|rabbitmq|memcached|traefik|caddy|envoy|busybox|cloud-?sql|datadog|fluent|otel|statsd|"
    r"postgres|pgbouncer|minio|elasticsearch|opensearch|valkey|kafka|zookeeper|mailhog|flower"
)


PYTHON_PROJECT_FILES = (
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
    "manage.py",
    "poetry.lock",
    "uv.lock",
)


SERVER_WORDS = re.compile(
    r"(^|/)(gunicorn|uvicorn|daphne|hypercorn|granian|uwsgi|celery|manage\.py|waitress-serve)$"
)


def runs_project_code(s: Scan, dockerfile: Dockerfile, depth: int = 0) -> bool:
    """An image of the project's Python: a Python base image (or a base the repository builds
    from one), the project copied in, or a start command that is a Python server
    (`CMD gunicorn proj.wsgi`)."""
    if any("python" in base or "django" in base for base in dockerfile.base_images):
        return True
    for base in dockerfile.base_images if depth < 3 else []:
        linked = image_dockerfile(s, base)
        if (
            linked is not None
            and linked[0] is not dockerfile
            and runs_project_code(s, linked[0], depth + 1)
        ):
            return True
    if any(SERVER_WORDS.search(w) for w in (dockerfile.cmd or []) + (dockerfile.entrypoint or [])):
        return True
    return any(
        s.repo.has(join(src if src != "." else "", "manage.py"))
        or src.endswith(PYTHON_PROJECT_FILES)
        # `COPY akvo/ /var/akvo/rsr/code/akvo`: a Python package of the repository
        or (src not in (".", "") and s.repo.has(join(src.rstrip("/"), "__init__.py")))
        for src in dockerfile.copies.values()
    )


def app_dockerfile(s: Scan) -> Dockerfile | None:
    """The one Dockerfile of the application (not a database's), if there is exactly one with a CMD."""
    found = [
        d
        for d in s.dockerfiles.values()
        if d.cmd
        and not POSTGRES_IMAGES.search(" ".join(d.base_images))
        and compose_score(d.path) > -15
    ]
    return found[0] if len(found) == 1 else None


def k8s_specs(s: Scan, base_env: Env, notes: list[str]) -> list[ProcessSpec]:
    specs = []
    fallback = app_dockerfile(s)
    for container in s.manifests.containers:
        if container.image and (
            POSTGRES_IMAGES.search(container.image) or PGBOUNCER_IMAGES.search(container.image)
        ):
            continue
        if container.argv is None and container.image and INFRA_IMAGES.search(container.image):
            continue
        env = base_env
        for name in container.config_maps:
            env = env.overlay(s.manifests.config_maps.get(name, Env()))
        env = env.overlay(container.env)
        replicas = Quantity(
            container.replicas if container.replicas is not None else 1,
            (
                Evidence(
                    container.replicas_path or container.path,
                    container.replicas_line,
                    s.repo.quote(
                        container.replicas_path or container.path, container.replicas_line
                    ),
                ),
            ),
        )
        name = (
            container.workload
            if container.name in (container.workload, "app", "web", "django")
            else f"{container.workload}/{container.name}"
        )
        if container.replicas_written:  # `replicas: !Ref WorkerReplicas`: filled in at deploy time
            replicas = Quantity(None, replicas.evidence, f"{name}.replicas")
        max_replicas = None
        for hpa in s.manifests.autoscalers:
            if hpa.target == container.workload and hpa.max_replicas is not None:
                max_replicas = Quantity(
                    hpa.max_replicas,
                    (Evidence(hpa.path, hpa.line, s.repo.quote(hpa.path, hpa.line)),),
                )
                if hpa.min_replicas is not None:
                    replicas = Quantity(
                        hpa.min_replicas,
                        (Evidence(hpa.path, hpa.line, f"minReplicas: {hpa.min_replicas}"),),
                    )
        image = container.image or ""
        linked = image_dockerfile(s, image) if image else None
        third_party = linked is None and bool(THIRD_PARTY_IMAGES.search(image))
        dockerfile = linked[0] if linked else None if third_party else fallback
        words = container.argv if container.argv else (dockerfile.cmd if dockerfile else None)
        client = _client_in_env(container.env) if third_party else None
        if container.argv is None and dockerfile is not None:
            notes.append(
                f"{container.workload}: no command in {container.path}; the image's CMD from {dockerfile.path} was used"
            )
        specs.append(
            ProcessSpec(
                name=name,
                words=words,
                env=env if dockerfile is None else dockerfile.env.overlay(env),
                source=Evidence(
                    container.path, container.line, f"{container.kind} {container.workload}"
                ),
                hosts=Quantity(1, (), None),
                replicas=replicas,
                max_replicas=max_replicas,
                entry_words=dockerfile.entrypoint if dockerfile else None,
                dockerfile=dockerfile,
                workdir=(dockerfile.workdir or "") if dockerfile else "",
                third_party=third_party,
                client="other-app" if client else "",
                client_evidence=client,
                image=image,
                unknown_reason=(
                    f"runs image {image}, which this repository does not build, with the image's own command"
                    if third_party and not words
                    else ""
                ),
            )
        )
    return specs


THIRD_PARTY_IMAGES = re.compile(
    r"hasura/|google_containers|defaultbackend|grafana|prometheus|datadog|elastic|bitnami/|jaegertracing|"
    r"otel|fluent|haproxy|envoy|cert-manager|k8s\.gcr\.io|registry\.k8s\.io|cloudwatch|oauth2-proxy|"
    r"nginx|redis|memcached|rabbitmq|minio|traefik|mailhog|mailpit|sentry",
    re.I,
)


def _client_in_env(env: Env) -> Evidence | None:
    """Where a container's own environment points it at PostgreSQL (a second application)."""
    for key, item in sorted(env.values.items()):
        if DB_CLIENT_KEYS.search(key) or "postgres" in (item.value or "").lower():
            return item.evidence
    return None


def image_specs(s: Scan, defs: list[ImageProcess], base_env: Env, kind: str) -> list[ProcessSpec]:
    """Process types that run an image built from a repository Dockerfile (heroku.yml): the
    stage's ENTRYPOINT and CMD, or the command the manifest gives instead of CMD."""
    specs = []
    for item in defs:
        dockerfile = s.dockerfiles.get(item.dockerfile)
        start = dockerfile.start(item.target) if dockerfile else None
        source = Evidence(item.path, item.line, f"{kind} {item.name}")
        words = split_words(item.command) if item.command else (start.cmd if start else None)
        specs.append(
            ProcessSpec(
                name=item.name,
                words=words or None,
                env=base_env.overlay(dockerfile.env_of(item.target)) if dockerfile else base_env,
                source=source,
                hosts=Quantity(None, (), f"{item.name}.hosts"),
                replicas=Quantity(1),
                entry_words=(start.entrypoint or None) if start else None,
                dockerfile=dockerfile,
                workdir=(dockerfile.workdir or "") if dockerfile else "",
                command_at=source
                if item.command
                else _at(s, (dockerfile.path, start.cmd_line))
                if dockerfile and start and start.cmd
                else None,
                unknown_reason=""
                if dockerfile
                else f"built from {item.dockerfile}, which is not in the repository",
                oneshot=item.oneshot,
            )
        )
    return specs


def simple_specs(defs: list, base_env: Env, kind: str) -> list[ProcessSpec]:
    specs = []
    for item in defs:
        env_path, env_line = getattr(item, "env_at", None) or (item.path, item.line)
        env = base_env.overlay(
            {k: EnvValue(k, v, Evidence(env_path, env_line, f"{k}={v}")) for k, v in item.env}
        )
        hosts = Quantity(None, (), f"{item.name}.hosts")
        if getattr(item, "count_at", None):
            replicas, hosts = _platform_instances(item)
        else:
            replicas = (
                Quantity(
                    item.count,
                    (Evidence(item.path, item.line, f"{item.name}: {item.count} at once"),),
                )
                if item.count
                else Quantity(1)
            )
        specs.append(
            ProcessSpec(
                name=item.name,
                words=split_words(item.command),
                env=env,
                source=Evidence(
                    item.path,
                    item.line,
                    f"{kind} {item.name}"
                    + (
                        f" (cron {item.schedule})"
                        if item.schedule not in (None, "deploy", "boot")
                        else ""
                    ),
                ),
                hosts=hosts,
                replicas=replicas,
                oneshot=""
                if not item.schedule
                else item.schedule
                if item.schedule in ("deploy", "boot")
                else "cron",
            )
        )
    return specs


def _platform_instances(item) -> tuple[Quantity, Quantity]:
    """(replicas, hosts) of a process type a platform scales by instances (Cloud Foundry): the
    instances are every container of it, wherever they run, so the hosts are not a count of
    their own (1)."""
    path, line = item.count_at
    hosts = Quantity(
        1, (Evidence(path, line, "instances: every container of the app, on any host"),)
    )
    if item.count is not None:
        return Quantity(
            item.count, (Evidence(path, line, f"{item.name}: instances {item.count}"),)
        ), hosts
    why = (
        f"{item.name}: no instances in the manifest (a non-web process type starts at 0 until `cf scale`)"
        if item.count_floor == 0
        else f"{item.name}: instances not a number in the manifest (a vars file or the command line sets it)"
    )
    return Quantity(
        None, (Evidence(path, line, why),), f"{item.name}.instances", item.count_floor
    ), hosts


def _chart_images(chart: HelmChart) -> list[str]:
    """The images a chart's values give its workloads (`image:`, `web.image.repository`)."""
    return [f.value for f in chart.facts if f.key == "image" or f.key.endswith(".image")]


ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")


def _chart_database_setting(s: Scan, chart: HelmChart) -> Evidence | None:
    """Where a chart's own files (values, templates; not its subcharts) name a database
    variable (`DATABASE_URL`, `POSTGRES_HOST`, `DB_HOST`) or a PostgreSQL URL."""
    prefix = chart.folder + "/" if chart.folder else ""
    for rel in sorted(s.repo.paths):
        if not rel.startswith(prefix) or "/charts/" in "/" + rel[len(prefix) :]:
            continue
        if not rel.endswith((".yaml", ".yml", ".tpl")):
            continue
        for number, line in enumerate((s.repo.text(rel) or "").splitlines(), 1):
            code = line.split("#", 1)[0]
            keys = [word for word in ENV_NAME.findall(code) if DB_CLIENT_KEYS.search(word)]
            if keys or "postgres" in code.lower():
                # The name only: the value may hold a password.
                return Evidence(rel, number, keys[0] if keys else "a PostgreSQL URL")
    return None


def _unrendered_spec(chart: HelmChart, base_env: Env, reason: str, **fields: Any) -> ProcessSpec:
    """The one unknown group of a deployment pgslots does not render or run (a Helm chart, an
    Arnold tray, infrastructure code), named after it."""
    return ProcessSpec(
        name=chart.name,
        words=None,
        env=base_env,
        source=chart.chart,
        hosts=Quantity(1, (), None),
        replicas=Quantity(1),
        unknown_reason=reason,
        **fields,
    )


def _unrendered_reason(chart: HelmChart) -> str:
    """Why the deployment's counts cannot be read, with what its files do say."""
    if chart.language == "program":
        # A CDK app, Pulumi program or Terraform configuration: services declared in code.
        where = ", ".join(e.location() for e in chart.templated[:3])
        return (
            f"{chart.kind} {chart.folder or '.'} declares container services ({where}) whose "
            "counts, commands and images are expressions of a program pgslots does not run"
        )
    said = "; ".join(f"{f.key}={f.value} ({f.evidence.location()})" for f in chart.facts[:8])
    return (
        f"{chart.kind} {chart.name} ({chart.chart.location()}): its workloads are "
        f"{chart.language} templates ({chart.templated[0].location()}) that pgslots does not render"
        + (
            f"; values {said}"
            if said
            else (
                f"; {', '.join(chart.values)} gives no count"
                if chart.values
                else "; the chart has no values file"
                if chart.kind == "Helm chart"
                else "; Ansible fills them from the tray's vars/"
            )
        )
    )


def helm_specs(s: Scan, base_env: Env, notes: list[str]) -> list[ProcessSpec]:
    """One unknown group per Helm chart whose workloads are Go templates (pgslots does not
    render them), named after Chart.yaml's `name`, with what its values files say.

    Beside the chart of the project's own image, a chart whose values give only images the
    repository does not build (a mail catcher, another team's API run for development) is
    a third-party image, as in a compose file: it counts only when its files name a database
    (then it is another application's client) or when nothing else of the unit runs."""
    own = {
        chart.folder: any(image_dockerfile(s, image) for image in _chart_images(chart))
        for chart in s.charts
    }
    specs = []
    for chart in s.charts:
        images = _chart_images(chart)
        third_party = any(own.values()) and bool(images) and not own[chart.folder]
        client = _chart_database_setting(s, chart) if third_party else None
        reason = _unrendered_reason(chart)
        if chart.kind != "Helm chart":
            specs.append(_unrendered_spec(chart, base_env, reason))
            continue
        notes.append(
            f"Helm chart {chart.name}: values layered for production: {', '.join(chart.values) or 'none'}"
            + (
                f"; alternatives not used: {', '.join(chart.alternatives)}"
                if chart.alternatives
                else ""
            )
        )
        specs.append(
            _unrendered_spec(
                chart,
                base_env,
                reason
                + (
                    f"; image {images[0]}, which this repository does not build"
                    + (f", with a database setting ({client.location()})" if client else "")
                    if third_party
                    else ""
                ),
                third_party=third_party,
                client="other-app" if client else "",
                client_evidence=client,
                image=images[0] if third_party else "",
            )
        )
    return specs
