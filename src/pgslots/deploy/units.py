"""Deployment units: which of the deployment descriptions a repository holds run in
production, and on which hosts.

A deployment is a set of units, each on an unknown number of hosts: a compose file (with the
overlays `docker compose -f base -f overlay` merges into it), a set of Kubernetes manifests, a
Procfile (with app.json's cron entries and deploy hooks), a Render blueprint, a Cloud Foundry
manifest, supervisord programs, systemd units, s6-overlay services, a Dockerfile's CMD. Every
candidate is listed, kept or dropped, with why:

- a compose deployment is for developers when its content says so (`discovery.development_reasons`);
- units that describe the same deployment are alternatives: one is kept, by this order:
  a production-named compose file, Kubernetes, Procfile/render.yaml/Cloud Foundry, another
  compose file, a native install (systemd/supervisord on the host), supervisord/s6 copied into
  an image, a compose file with only weak signs of development, a Dockerfile's CMD, a compose
  file of images the repository does not build, a development compose file (`--unit` overrides);
- a production compose file that runs the project's workers without a web server (the write-up's
  `docker-compose.worker.yml`) is a complement: kept beside the main one, on hosts of its own
  (`<unit>.hosts`), its shared group names written `name@unit`.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.discovery import (
    BACKUP_PROGRAMS,
    BUILD_FILES,
    CRON_FILES,
    POSTGRES_IMAGES,
    ProcessSpec,
    Scan,
    cmd_evidence,
    compose_specs,
    database_affinity,
    development_reasons,
    helm_specs,
    image_specs,
    infra_base,
    k8s_specs,
    project_env,
    runs_project_code,
    simple_specs,
)
from pgslots.deploy.model import Quantity, Unit
from pgslots.deploy.processes import managed_specs, resolve
from pgslots.deploy.readers import join
from pgslots.deploy.readers.commands import LAMBDA_PROGRAM, holds_no_database, split_words
from pgslots.deploy.readers.docker import (
    ComposeFile,
    Dockerfile,
    Service,
    Start,
    compose_score,
    merge_compose,
)
from pgslots.deploy.readers.documented import documented_production
from pgslots.deploy.readers.envfiles import Env, EnvValue
from pgslots.deploy.readers.links import linked_files
from pgslots.deploy.readers.platforms import (
    cloudfoundry_score,
    read_app_json_cron,
    read_cloudfoundry,
    read_dokku_scale,
    read_heroku_yml,
    read_procfile,
    read_render,
    read_s6_services,
    read_supervisord,
    read_systemd,
)
from pgslots.deploy.readers.serverless import handler_module, read_functions, template_paths
from pgslots.errors import InputError
from pgslots.evidence import Evidence

WEB_PROGRAMS = frozenset(
    {"gunicorn", "uvicorn", "daphne", "hypercorn", "granian", "uwsgi", "waitress"}
)
OWN_HOSTS_COMMENT = re.compile(
    r"#.*\b(hosts?|servers?|machines?|nodes?|vms?|droplets?|instances?)\b", re.I
)


@dataclasses.dataclass
class Deployment:
    """The process definitions of the deployment to audit, and the units they come from."""

    specs: list[ProcessSpec]
    compose: ComposeFile | None  # the main compose deployment, whose database service is the server
    base_env: Env  # the project's production env files, for processes without their own
    units: list[Unit]  # every candidate, kept or dropped, with why
    notes: list[str]

    @property
    def sources(self) -> list[str]:
        return [f"{', '.join(u.paths)} ({u.why})" for u in self.units if u.kept]


@dataclasses.dataclass
class ComposeCandidate:
    name: str
    compose: ComposeFile
    paths: tuple[str, ...]
    development: list[str]
    specs: list[ProcessSpec] = dataclasses.field(default_factory=list)
    web: str = ""  # a service that runs the web server, if any

    invoked: str = (
        ""  # where a script or Makefile runs `docker compose -f ... -f ...` with these files
    )
    bonus: int = 0  # 30 when that invocation is a production make target (`docker-prod:`), 20 a production line

    @property
    def rank(self) -> tuple:
        """Production names (or a production invocation) first, then the canonical file name,
        then a file on its own."""
        return (
            -max(compose_score(p) for p in self.paths) - self.bonus,
            stem(self.paths[-1]) not in CANONICAL,
            len(self.paths),
            self.paths[0],
        )


def stem(path: str) -> str:
    """A compose file's unit name: its file name without `.yml`."""
    return re.sub(r"\.ya?ml$", "", path.rsplit("/", 1)[-1])


def compose_candidates(s: Scan) -> list[ComposeCandidate]:
    """Every compose deployment: each file, and each base file with an overlay on top (a file
    whose services are partial definitions of the base's, or docker-compose.override.yml)."""
    by_folder: dict[str, list[ComposeFile]] = {}
    for compose in s.composes:
        by_folder.setdefault(
            compose.path.rsplit("/", 1)[0] if "/" in compose.path else "", []
        ).append(compose)
    out: list[ComposeCandidate] = []
    for files in by_folder.values():
        # An overlay amends a complete file; the complete ones are the bases.
        overlays = {
            c.path for c in files if any(_partial_of(c, other) for other in files if other is not c)
        }
        complete = [c for c in files if c.path not in overlays]
        for compose in files:
            base = (
                _base_of(compose, complete)
                if compose.path in overlays or "override" in stem(compose.path).lower()
                else None
            )
            if base is not None:
                out.append(
                    ComposeCandidate(
                        f"{stem(base.path)}+{stem(compose.path)}",
                        merge_compose(base, compose),
                        (base.path, compose.path),
                        [],
                    )
                )
            else:
                out.append(ComposeCandidate(stem(compose.path), compose, (compose.path,), []))
    out.extend(_invoked_combinations(s, {c.paths for c in out}))
    names = [c.name for c in out]
    for candidate in out:
        if (
            names.count(candidate.name) > 1
        ):  # the same file name in several folders: name it by its path
            candidate.name = "+".join(re.sub(r"\.ya?ml$", "", p) for p in candidate.paths)
    return out


COMPOSE_RUN = re.compile(r"docker[- ]compose((?:\s+(?:-f|--file)[ =]\S+){2,})")
PRODUCTION_WORDS = re.compile(r"\b(prod|production|live|deploy)\b|[-_](prod|production)\b", re.I)


def _invoked_combinations(s: Scan, known: set[tuple[str, ...]]) -> list[ComposeCandidate]:
    """`docker compose -f a.yml -f b.yml -f c.yml up` in a Makefile or script: the files merged in
    that order are a deployment (a production one when the target or line says so)."""
    by_path = {c.path: c for c in s.composes}
    out: list[ComposeCandidate] = []
    for rel in s.repo.paths:
        if not BUILD_FILES.search(rel):
            continue
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        lines = s.repo.lines(rel)
        for number, line in enumerate(lines, 1):
            found = COMPOSE_RUN.search(line)
            if not found:
                continue
            files = tuple(
                join(folder, f.split("=", 1)[-1] if "=" in f else f)
                for f in re.findall(r"(?:-f|--file)[ =](\S+)", found[1])
            )
            if len(files) < 2 or not all(f in by_path for f in files) or files in known:
                continue
            target = next(
                (
                    lines[i].split(":", 1)[0]
                    for i in range(number - 1, -1, -1)
                    if re.match(r"^[\w.-]+:", lines[i])
                ),
                "",
            )
            merged = by_path[files[0]]
            for other in files[1:]:
                merged = merge_compose(merged, by_path[other])
            bonus = (
                30
                if PRODUCTION_WORDS.search(target)
                else 20
                if PRODUCTION_WORDS.search(line)
                else 0
            )
            out.append(
                ComposeCandidate(
                    "+".join(stem(f) for f in files),
                    merged,
                    files,
                    [],
                    invoked=f"{rel}:{number}",
                    bonus=bonus,
                )
            )
            known.add(files)
    return out


def _base_of(compose: ComposeFile, complete: list[ComposeFile]) -> ComposeFile | None:
    """The complete file an overlay amends (`docker compose -f base -f overlay`): the canonical
    docker-compose.yml first, then the one it shares most services with."""
    names = set(compose.services)
    bases = [
        c
        for c in complete
        if c is not compose
        and set(c.services) & names
        and "override" not in stem(c.path).lower()
        and (_partial_of(compose, c) or "override" in stem(compose.path).lower())
    ]
    bases.sort(key=lambda c: (stem(c.path) not in CANONICAL, -len(set(c.services) & names), c.path))
    return bases[0] if bases else None


def _partial_of(compose: ComposeFile, base: ComposeFile) -> bool:
    """Every service `compose` shares with `base` only amends it, and most of its services are
    shared, or one of them cannot run alone (no image, build or extends: compose refuses such a
    file on its own, so it only ever amends another)."""
    shared = [name for name in compose.services if name in base.services]
    if not shared:
        return False
    if len(shared) * 2 < len(compose.services) and not any(
        _incomplete(compose.services[name].raw) for name in shared
    ):
        return False

    def amends(name: str) -> bool:
        mine, theirs = compose.services[name].raw, base.services[name].raw
        if _incomplete(mine):
            return True  # a partial definition
        starts = ("command", "entrypoint")
        if any(k in mine for k in starts):
            return False
        if _rebuilt(compose.services[name], base.services[name]):
            return False
        # `build:` instead of the base's `image:`, or without the command the base gives: the base says what runs.
        return any(k in theirs for k in starts) or ("image" in theirs and "image" not in mine)

    return all(amends(name) for name in shared)


def _incomplete(service: dict) -> bool:
    return "image" not in service and "build" not in service and "extends" not in service


CANONICAL = ("docker-compose", "compose")


def _rebuilt(mine: Service, theirs: Service) -> bool:
    """A service built from another Dockerfile into another image (`Dockerfile.prod` ->
    `app-prod` where the base builds `Dockerfile.dev` -> `app-dev`): a service of its own, not
    an amendment of the base's (merged, the base's dev command would run the prod image)."""
    if not (mine.dockerfile and theirs.dockerfile and mine.dockerfile != theirs.dockerfile):
        return False
    names = [(sv.image or "").rsplit(":", 1)[0] for sv in (mine, theirs)]
    return all(names) and names[0] != names[1]


def _runs_web(s: Scan, specs: list[ProcessSpec]) -> str:
    for spec in specs:
        for each in managed_specs(s, spec) or [spec]:
            launch = resolve(s, each).launch
            if launch is not None and (
                launch.program in WEB_PROGRAMS
                or (launch.program == "manage" and "runserver" in launch.positionals)
            ):
                return spec.name
    return ""


def _shared_images(a: ComposeCandidate, b: ComposeCandidate) -> list[str]:
    """The images (or Dockerfiles) two compose deployments both run, infrastructure aside."""

    def images(c: ComposeCandidate) -> set[str]:
        return {sp.dockerfile.path if sp.dockerfile else "" for sp in c.specs} - {""} | {
            (c.compose.services[sp.name].image or "").split(":")[0]
            for sp in c.specs
            if sp.name in c.compose.services
        } - {""}

    return sorted(images(a) & images(b))


def _runs_workers(s: Scan, specs: list[ProcessSpec]) -> bool:
    for spec in specs:
        for each in managed_specs(s, spec) or [spec]:
            launch = resolve(s, each).launch
            if (launch is not None and launch.program.startswith("celery")) or (
                launch is not None and launch.program in ("rq-worker", "dramatiq", "huey")
            ):
                return True
    return False


def _own_hosts(s: Scan, candidate: ComposeCandidate) -> tuple[int, str]:
    """The floor of a complementary unit's hosts: 1 when its file says where it runs (a comment
    about hosts or servers) or its name says production, else 0 (it may not run at all)."""
    for path in candidate.paths:
        for number, line in enumerate(s.repo.lines(path), 1):
            if OWN_HOSTS_COMMENT.search(line):
                return 1, f"{path}:{number} says `{line.strip()[:60]}`"
    if max(compose_score(p) for p in candidate.paths) >= 10:
        return 1, "its name says production"
    return 0, "nothing says it is deployed: it may run on no host"


def _on_own_hosts(specs: list[ProcessSpec], unit: str, floor: int) -> list[ProcessSpec]:
    hosts = Quantity(None, (), f"{unit}.hosts", floor)
    return [
        dataclasses.replace(sp, hosts=hosts if sp.hosts.value is None else sp.hosts) for sp in specs
    ]


def _rename_shared(kept: list[tuple[str, list[ProcessSpec]]]) -> list[ProcessSpec]:
    """A name two kept units both define becomes `name@unit` in each."""
    counts: dict[str, int] = {}
    for _, specs in kept:
        for name in {sp.name for sp in specs}:
            counts[name] = counts.get(name, 0) + 1
    out = []
    for unit, specs in kept:
        for sp in specs:
            name = f"{sp.name}@{unit}" if counts[sp.name] > 1 else sp.name
            hosts = sp.hosts
            if counts[sp.name] > 1 and hosts.unknown == f"{sp.name}.hosts":
                hosts = dataclasses.replace(hosts, unknown=f"{name}.hosts")
            out.append(dataclasses.replace(sp, name=name, hosts=hosts))
    return out


def _choose_compose(
    s: Scan,
    production: list[ComposeCandidate],
    units: list[Unit],
    kept: list,
    decided: set[str],
    notes: list[str],
) -> ComposeCandidate:
    """The main compose deployment (the best ranked that runs the web server) and the units
    beside it on hosts of their own; the rest are dropped with why."""

    def drop(candidate: ComposeCandidate, why: str) -> None:
        units.append(Unit(candidate.name, "compose", candidate.paths, False, why))
        decided.add(candidate.name)

    main = next((c for c in production if c.web), production[0])
    notes.extend(n for n in _spec_notes(s, main))
    units.append(
        Unit(
            main.name,
            "compose",
            main.paths,
            True,
            "the production compose deployment"
            + (f" (runs the web server: {main.web})" if main.web else "")
            + (f"; {main.invoked} runs these files together" if main.invoked else ""),
            groups=tuple(sp.name for sp in main.specs),
        )
    )
    decided.add(main.name)
    kept.append((main.name, main.specs))
    for candidate in production:
        if candidate.name in decided:
            continue
        if set(candidate.paths) & set(main.paths):
            drop(
                candidate,
                f"{main.name} merges it"
                if set(candidate.paths) < set(main.paths)
                else f"an overlay combination of {main.name}'s files",
            )
        elif candidate.web:
            drop(
                candidate,
                f"an alternative to {main.name}: it also runs the web server ({candidate.web})",
            )
        elif _shared_images(main, candidate) and not _runs_workers(s, candidate.specs):
            drop(
                candidate,
                f"an alternative to {main.name}: it runs the same images ({', '.join(_shared_images(main, candidate)[:3])})",
            )
        elif not _shared_images(main, candidate) and not any(
            sp.dockerfile for sp in candidate.specs
        ):
            drop(candidate, "it runs none of the project's images")
        else:
            floor, why_floor = _own_hosts(s, candidate)
            unit_hosts = f"{candidate.name}.hosts"
            notes.extend(_spec_notes(s, candidate))
            specs = _on_own_hosts(candidate.specs, candidate.name, floor)
            units.append(
                Unit(
                    candidate.name,
                    "compose",
                    candidate.paths,
                    True,
                    f"runs the project's workers without a web server: a unit on hosts of its own ({unit_hosts}, "
                    f"floor {floor}: {why_floor})",
                    unit_hosts,
                    floor,
                    tuple(sp.name for sp in specs),
                )
            )
            decided.add(candidate.name)
            kept.append((candidate.name, specs))
    return main


def choose_units(s: Scan, chosen: str | None = None) -> Deployment:
    """The units of the deployment to audit (see the module docstring for the rules);
    `chosen` names the unit to keep instead (`--unit NAME`)."""
    notes: list[str] = []
    units: list[Unit] = []
    base_env = project_env(s, notes)
    candidates = compose_candidates(s)
    # A file another compose file includes or extends is part of that one, not a deployment of its own.
    parts = {path: c.path for c in s.composes for path in c.included + c.extended}
    units.extend(
        Unit(
            candidate.name,
            "compose",
            candidate.paths,
            False,
            f"part of {parts[candidate.paths[0]]} (include/extends)",
        )
        for candidate in candidates
        if len(candidate.paths) == 1 and candidate.paths[0] in parts
    )
    candidates = [c for c in candidates if not (len(c.paths) == 1 and c.paths[0] in parts)]
    for candidate in candidates:
        candidate.development = development_reasons(s, candidate.compose)
        candidate.specs = [
            dataclasses.replace(sp, unit=candidate.name)
            for sp in compose_specs(s, candidate.compose, [])
        ]
    runnable = [c for c in candidates if c.specs]
    production = sorted(
        (c for c in runnable if not c.development),
        key=lambda c: (c.rank[0], -database_affinity(s, c.compose)) + c.rank[1:],
    )
    for candidate in production:
        candidate.web = _runs_web(s, candidate.specs)
    strict = [c for c in production if any(not sp.third_party or sp.client for sp in c.specs)]
    named = [c for c in strict if max(compose_score(p) for p in c.paths) >= 10]
    others = _platform_units(s, base_env)
    k8s = k8s_specs(s, base_env, notes) if s.manifests.containers else []
    if k8s:
        others.insert(
            0,
            (
                Unit(
                    "kubernetes",
                    "kubernetes",
                    tuple(sorted({sp.source.path for sp in k8s})),
                    True,
                    "Kubernetes manifests",
                ),
                k8s,
            ),
        )
    helm = helm_specs(s, base_env, notes)
    if helm:
        others.append(
            (
                Unit(
                    "helm",
                    "helm",
                    tuple(sp.source.path for sp in helm),
                    True,
                    "Helm charts (templates not rendered: unknown groups)"
                    if all(c.kind == "Helm chart" for c in s.charts)
                    else f"{', '.join(sorted({c.kind for c in s.charts}))} (not rendered or run: unknown groups)",
                ),
                helm,
            )
        )
    dockerfile = _dockerfile_unit(s, base_env)
    # A unit whose every process holds no database connection (an idle `tail -f /dev/null` pod)
    # does not describe the application's deployment.
    idle = {o[0].name: _idle(s, o[1]) for o in others if o[1]}
    others = [(unit, [] if idle.get(unit.name) else specs) for unit, specs in others]
    documented = _documented_units(s, others)
    # The order in which a unit describes the deployment when several do (alternatives).
    tiers: list[list] = [
        documented,
        named,
        [o for o in others if o[0].kind == "kubernetes" and o[1]],
        [o for o in others if o[0].kind in ("procfile", "render", "cloudfoundry") and o[1]],
        [c for c in strict if c not in named],
        # A native install (systemd units, supervisord programs on the host) after a compose deployment.
        [
            o
            for o in others
            if o[0].kind in ("supervisord", "systemd", "s6") and o[1] and not _inside_image(s, o[0])
        ],
        # supervisord/s6 copied into an image: the deployment when no compose file runs that image.
        [o for o in others if o[0].kind in ("supervisord", "systemd", "s6") and o[1]],
        # A compose file with only weak signs of development (bind mounts) before a bare Dockerfile
        # CMD, when it runs the application (not only a notebook or a one-off tool).
        sorted(
            (
                c
                for c in runnable
                if c.development
                and c.rank[0] < 10
                and not development_reasons(s, c.compose, strong_only=True)
                and (_runs_web(s, c.specs) or _runs_workers(s, c.specs))
            ),
            key=lambda c: c.rank,
        ),
        # An unrendered Helm chart (unknown groups) after every unit pgslots can model.
        [o for o in others if o[0].kind == "helm" and o[1]],
        [dockerfile] if dockerfile else [],
        [c for c in production if c not in strict],
        # Among development files, one that runs the web server (not a notebook or a test runner).
        sorted(
            (c for c in runnable if c.development),
            key=lambda c: (not _runs_web(s, c.specs), c.rank),
        ),
    ]
    if chosen is not None:
        names = (
            [c.name for c in candidates]
            + [o[0].name for o in others]
            + ([dockerfile[0].name] if dockerfile else [])
        )
        if chosen not in names:
            raise InputError(
                f"--unit {chosen}: no such deployment unit (units found: {', '.join(names) or 'none'})"
            )
        tiers = [
            [c for c in candidates if c.name == chosen]
            + [o for o in others + ([dockerfile] if dockerfile else []) if o[0].name == chosen]
        ]
    kept: list[tuple[str, list[ProcessSpec]]] = []
    decided: set[str] = set()
    main: ComposeCandidate | None = None
    taken = ""
    for tier in tiers:
        if not tier:
            continue
        first = tier[0]
        if isinstance(first, ComposeCandidate):
            pool = [first] + [
                c for c in strict if c is not first
            ]  # the others may run beside it (worker hosts)
            main = _choose_compose(s, pool, units, kept, decided, notes)
            if first.development:
                why = (
                    (
                        f"chosen with --unit {chosen}"
                        if chosen
                        else "a development compose deployment: nothing else describes the deployment"
                    )
                    + " (for development: "
                    + "; ".join(first.development)
                    + ")"
                )
                units[:] = [
                    dataclasses.replace(u, why=why) if u.name == main.name and u.kept else u
                    for u in units
                ]
            taken = main.name
        else:
            unit, specs = first
            why = unit.why if chosen is None else f"{unit.why} (--unit {chosen})"
            units.append(dataclasses.replace(unit, why=why, groups=tuple(sp.name for sp in specs)))
            decided.add(unit.name)
            kept.append((unit.name, [dataclasses.replace(sp, unit=unit.name) for sp in specs]))
            taken = unit.name
        break
    for candidate in candidates:
        if candidate.name in decided:
            continue
        if candidate.development:
            why = "for development: " + "; ".join(candidate.development)
        elif not candidate.specs:
            why = "it starts none of the project's processes"
        elif chosen is not None:
            why = f"not chosen (--unit {chosen})"
        elif candidate in production and candidate not in strict:
            why = "it runs only images this repository does not build, none with database settings"
        else:
            why = f"an alternative to {taken}" if taken else "not used"
        units.append(Unit(candidate.name, "compose", candidate.paths, False, why))
    for unit, specs in others + (
        [dockerfile]
        if dockerfile and dockerfile[0].name not in decided and _has_cmd(dockerfile)
        else []
    ):
        if unit.name in decided:
            continue
        inside = _inside_image(s, unit) if unit.kind in ("supervisord", "systemd", "s6") else ""
        runner = next((u for u in units if u.kept and u.name == taken), None)
        why = (
            f"runs inside the image built from {inside}"
            if inside
            else f"{taken} runs it"
            if runner is not None and set(unit.paths) <= set(runner.paths)
            else "a Cloud Foundry manifest for another environment (its name says so)"
            if unit.kind == "cloudfoundry"
            and not specs
            and len(unit.paths) > 0
            and cloudfoundry_score(read_cloudfoundry(s.repo, unit.paths[0]), unit.paths[0]) < 0
            else f"its processes hold no database connection ({idle[unit.name]})"
            if idle.get(unit.name)
            else "it defines no process"
            if not specs
            else f"not chosen (--unit {chosen})"
            if chosen is not None
            else f"an alternative to {taken}"
            if taken
            else "not used"
        )
        units.append(dataclasses.replace(unit, kept=False, why=why))
    for unit, specs in lambda_units(s, base_env):
        # Functions run beside the servers (jobs, an API), on AWS's hosts: a complement.
        units.append(dataclasses.replace(unit, groups=tuple(sp.name for sp in specs)))
        kept.append((unit.name, specs))
    if kept:
        backups = cron_backups(s, base_env)
        if backups:
            units.append(
                Unit(
                    "crontab",
                    "cron",
                    tuple(sorted({sp.source.path for sp in backups})),
                    True,
                    "cron entries that dump the database (pg_dump): clients of the same server",
                    groups=tuple(sp.name for sp in backups),
                )
            )
            kept.append(("crontab", backups))
    specs = _rename_shared(kept)
    compose = (
        main.compose if main is not None and any(sp.unit == main.name for sp in specs) else None
    )
    if base_env.sources and compose is None:
        notes.append(
            f"environment read from {', '.join(base_env.sources)} (the production env files in the repository)"
        )
    return Deployment(specs, compose, base_env, units, notes)


DOCUMENTED_KINDS = {"kubernetes": ("kubernetes", "helm"), "procfile": ("procfile",)}


def _documented_units(
    s: Scan, others: list[tuple[Unit, list[ProcessSpec]]]
) -> list[tuple[Unit, list[ProcessSpec]]]:
    """The units of the method the repository's documentation says its maintainers run in
    production ("We use Kubernetes for our production instance"): they rank first."""
    documented = documented_production(s.repo)
    kinds = DOCUMENTED_KINDS.get(documented.method, ()) if documented else ()
    if documented is None:
        return []
    said = f"{documented.evidence.location()} says `{documented.evidence.text[:120]}`"
    return [
        (
            dataclasses.replace(unit, why=f"{unit.why}; the documented production method ({said})"),
            specs,
        )
        for unit, specs in others
        if unit.kind in kinds and specs
    ]


def _idle(s: Scan, specs: list[ProcessSpec]) -> str:
    """What every process of a unit runs when none of them holds a database connection
    (`tail -f /dev/null`, a proxy); empty when one of them may."""
    seen: list[str] = []
    for spec in specs:
        for each in managed_specs(s, spec) or [spec]:
            launch = resolve(s, each).launch
            if launch is None or not holds_no_database(launch.argv):
                return ""
            seen.append(f"{each.name}: `{launch.text[:40]}`")
    return "; ".join(seen)


def _started_by_image(
    s: Scan, paths: tuple[str, ...], specs: list[ProcessSpec], base_env: Env
) -> list[ProcessSpec]:
    """supervisord programs copied into an image whose entry script sets the environment up and
    then execs supervisord run with what that script exported (`%(ENV_WEB_WORKERS)s`); their
    own `environment=` entries still win."""
    path = _inside_image(s, Unit("supervisord", "supervisord", paths, True, ""))
    dockerfile = s.dockerfiles.get(path) if path else None
    if dockerfile is None or not (dockerfile.cmd or dockerfile.entrypoint):
        return specs
    image = ProcessSpec(
        "image",
        dockerfile.cmd or [],
        base_env.overlay(dockerfile.env),
        cmd_evidence(s, dockerfile),
        Quantity(1),
        Quantity(1),
        entry_words=dockerfile.entrypoint,
        dockerfile=dockerfile,
        workdir=dockerfile.workdir or "",
    )
    started = resolve(s, image)
    if started.launch is None or started.launch.program != "supervisord":
        return specs
    exported = started.env.process()
    linked = _linked_programs(s, dockerfile, started.where.path, started.env)
    return [
        dataclasses.replace(
            spec,
            env=exported.overlay(
                {k: v for k, v in spec.env.values.items() if v.evidence.path == spec.source.path}
            ),
        )
        for spec in specs
        if linked is None or spec.source.path in linked
    ]


def _linked_programs(s: Scan, dockerfile: Dockerfile, script: str, env: Env) -> set[str] | None:
    """The program files supervisord reads when its `[include]` folder is one the start script
    fills with links at run time (not in the repository): the repository files linked there.
    None when no include folder is filled that way (every program file counts)."""

    def in_repo(image_path: str) -> str | None:
        for dest, src in sorted(dockerfile.copies.items(), key=lambda item: -len(item[0])):
            base = dest.rstrip("/") or "/"
            if image_path == base:
                return src
            if image_path.startswith(base.rstrip("/") + "/"):
                return join(src, image_path[len(base.rstrip("/")) + 1 :])
        return None

    def listing(folder: str) -> list[str]:
        repo_folder = in_repo(folder)
        if repo_folder is None:
            return []
        prefix = repo_folder.rstrip("/") + "/"
        return [folder + "/" + p[len(prefix) :] for p in s.repo.paths if p.startswith(prefix)]

    text = s.repo.text(script) or ""
    if "ln " not in text:
        return None
    includes = [
        p
        for p in s.repo.paths
        if "supervisor" in p.lower() and "[include]" in (s.repo.text(p) or "")
    ]
    chosen: set[str] = set()
    for folder, image_paths in linked_files(text, env, listing).items():
        if in_repo(folder) is not None or not any(
            folder + "/" in (s.repo.text(p) or "") for p in includes
        ):
            continue  # a folder the image holds, or one no supervisord config includes
        chosen.update(path for path in (in_repo(p) for p in image_paths) if path)
    return chosen or None


def _inside_image(s: Scan, unit: Unit) -> str:
    """The Dockerfile that copies a supervisord or systemd unit's files into its image: then
    the unit is how that image starts, not a deployment of its own."""
    for path, dockerfile in sorted(s.dockerfiles.items()):
        copied = set(dockerfile.copies.values())
        if any(
            p in copied
            or any(p.startswith(src.rstrip("/") + "/") for src in copied if src not in (".", ""))
            for p in unit.paths
        ):
            return path
    return ""


def _spec_notes(s: Scan, candidate: ComposeCandidate) -> list[str]:
    """The notes reading a kept compose deployment gives (read again: only kept units speak)."""
    notes: list[str] = []
    compose_specs(s, candidate.compose, notes)
    return notes


def _platform_units(s: Scan, base_env: Env) -> list[tuple[Unit, list[ProcessSpec]]]:
    """Procfiles (with app.json's cron entries), Render blueprints, supervisord programs,
    systemd units: each a candidate unit with its process definitions."""
    repo = s.repo
    out: list[tuple[Unit, list[ProcessSpec]]] = []
    for rel in repo.named("heroku.yml"):
        # Heroku's container stack builds the images heroku.yml names and ignores any Procfile.
        heroku = image_specs(s, read_heroku_yml(repo, rel), base_env, "heroku.yml")
        if heroku:
            out.append(
                (
                    Unit(rel, "procfile", (rel,), True, "a heroku.yml (Heroku's container stack)"),
                    heroku,
                )
            )
    for rel in repo.named("Procfile"):
        folder = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        cron = (
            read_app_json_cron(repo, folder + "app.json") if repo.has(folder + "app.json") else []
        )
        scale = (
            read_dokku_scale(repo, folder + "DOKKU_SCALE")
            if repo.has(folder + "DOKKU_SCALE")
            else {}
        )
        defs = [
            dataclasses.replace(d, count=scale[d.name])
            if d.name in scale and d.count is None
            else d
            for d in read_procfile(repo, rel)
        ]
        specs = simple_specs(defs + cron, base_env, "Procfile")
        paths = (rel,) + ((folder + "app.json",) if cron else ())
        out.append(
            (
                Unit(
                    "Procfile" if rel == "Procfile" else rel,
                    "procfile",
                    paths,
                    True,
                    "a Procfile (Heroku, Dokku)"
                    + (" with app.json's cron entries" if cron else ""),
                ),
                specs,
            )
        )
    for rel in repo.named("render.yaml"):
        specs = simple_specs(read_render(repo, rel), base_env, "render.yaml")
        out.append((Unit(rel, "render", (rel,), True, "a Render blueprint"), specs))
    manifests = [
        (rel, read_cloudfoundry(repo, rel))
        for rel in repo.paths
        if rel.endswith((".yml", ".yaml")) and "manifest" in rel.rsplit("/", 1)[-1].lower()
    ]
    for rel, defs in sorted(
        (m for m in manifests if m[1]), key=lambda m: (-cloudfoundry_score(m[1], m[0]), m[0])
    ):
        score = cloudfoundry_score(defs, rel)
        procfiles = tuple(sorted({d.path for d in defs} - {rel}))
        why = (
            "a Cloud Foundry manifest"
            + (" (IS_PRODUCTION or a production name)" if score > 0 else "")
            + (f" running {', '.join(procfiles)}'s process types" if procfiles else "")
        )
        out.append(
            (
                Unit(rel, "cloudfoundry", (rel,) + procfiles, True, why),
                simple_specs(defs, base_env, "Cloud Foundry") if score >= 0 else [],
            )
        )
    # A manifest that runs a Procfile says more than the Procfile alone (how many instances):
    # it comes first among the alternatives.
    out.sort(key=lambda o: not (o[0].kind == "cloudfoundry" and len(o[0].paths) > 1 and o[1]))
    defs = [
        d
        for rel in repo.paths
        if (rel.endswith((".conf", ".ini")) and "supervisor" in rel.lower())
        or (rel in s.templates and "[program:" in (repo.text(rel) or ""))
        for d in read_supervisord(repo, rel)
    ]
    if defs:
        specs = _started_by_image(
            s,
            tuple(sorted({d.path for d in defs})),
            simple_specs(defs, base_env, "supervisord"),
            base_env,
        )
        out.append(
            (
                Unit(
                    "supervisord",
                    "supervisord",
                    # the files supervisord reads (a start script may link only some of them)
                    tuple(sorted({d.path for d in defs} & {sp.source.path for sp in specs})),
                    True,
                    "supervisord programs",
                ),
                specs,
            )
        )
    defs = [
        d
        for rel in repo.paths
        if (rel.endswith(".service") or (rel in s.templates and ".service." in rel))
        and _installed_unit(repo, rel)
        for d in read_systemd(repo, rel)
    ]
    if defs:
        specs = simple_specs(defs, base_env, "systemd")
        out.append(
            (
                Unit(
                    "systemd",
                    "systemd",
                    tuple(sorted({d.path for d in defs})),
                    True,
                    "systemd units",
                ),
                specs,
            )
        )
    # On its own (not inside a compose container) an s6 service is named as its folder is (svc-app).
    defs = [dataclasses.replace(d, name=d.path.split("/")[-2]) for d in read_s6_services(repo)]
    if defs:
        specs = simple_specs(defs, base_env, "s6-overlay")
        out.append(
            (
                Unit(
                    "s6-overlay",
                    "s6",
                    tuple(sorted({d.path for d in defs})),
                    True,
                    "s6-overlay services",
                ),
                specs,
            )
        )
    return out


def lambda_units(s: Scan, base_env: Env) -> list[tuple[Unit, list[ProcessSpec]]]:
    """Each SAM/CloudFormation template with Python Lambda functions: a unit whose groups are
    its functions (their concurrency is the process count; readers/serverless.py)."""
    out = []
    for rel in template_paths(s.repo):
        specs = []
        for function in read_functions(s.repo, rel):
            where = Evidence(rel, function.line, s.repo.quote(rel, function.line))
            words = [
                LAMBDA_PROGRAM,
                f"--handler-file={handler_module(s.repo, function) or ''}",
                f"--events={','.join(function.events)}",
            ]
            if function.reserved is not None:
                words.append(f"--reserved-concurrency={function.reserved}")
            if function.reserved_line is not None:
                words.append(f"--reserved-at={function.reserved_line}")
            env_at = function.env_line or function.line
            specs.append(
                ProcessSpec(
                    function.name,
                    words + [function.handler],
                    base_env.overlay(
                        {
                            k: EnvValue(k, v, Evidence(rel, env_at, f"{k}={v}"))
                            for k, v in function.env
                        }
                    ),
                    where,
                    Quantity(1, (Evidence(rel, function.line, "AWS Lambda: no hosts of its own"),)),
                    Quantity(1),
                    command_at=where,
                    unit=rel,
                )
            )
        if specs:
            out.append(
                (
                    Unit(
                        rel,
                        "lambda",
                        (rel,),
                        True,
                        "AWS Lambda functions (SAM/CloudFormation): they run beside the other units",
                    ),
                    specs,
                )
            )
    return out


def cron_backups(s: Scan, base_env: Env) -> list[ProcessSpec]:
    """Crontab lines that run pg_dump (a nightly backup): each holds one connection while it runs."""
    out: list[ProcessSpec] = []
    for rel in s.repo.paths:
        if not CRON_FILES.search(rel):
            continue
        for number, line in enumerate(s.repo.lines(rel), 1):
            if line.lstrip().startswith("#") or not BACKUP_PROGRAMS.search(" " + line):
                continue
            where = Evidence(rel, number, s.repo.quote(rel, number))
            name = "pg_dump" if not out else f"pg_dump-{len(out) + 1}"
            out.append(
                ProcessSpec(
                    name,
                    split_words(line.strip()),
                    base_env,
                    where,
                    Quantity(1),
                    Quantity(1),
                    client="backup",
                    command_at=where,
                    unit="crontab",
                )
            )
    return out


def _installed_unit(repo, rel: str) -> bool:
    """A YunoHost package installs `conf/systemd.service` (ynh_config_add_systemd's default) or
    the templates its scripts name (`--template=other.service`); other unit files are stale."""
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    package = folder.rsplit("/", 1)[0] if "/" in folder else ""
    prefix = package + "/" if package else ""
    if not (repo.has(prefix + "manifest.toml") and repo.has(prefix + "scripts/install")):
        return True
    name = rel.rsplit("/", 1)[-1]
    scripts = " ".join(repo.text(p) or "" for p in repo.paths if p.startswith(prefix + "scripts/"))
    return (
        name == "systemd.service"
        or f"--template={name}" in scripts
        or f'--template="{name}"' in scripts
    )


NOT_RELEASE_STAGE = re.compile(r"^(test|tests|testing|dev|development|ci|local|debug)$", re.I)
RELEASE_STAGE = re.compile(r"^(prod|production|release|runtime)$", re.I)


def _release_stage(dockerfile: Dockerfile) -> tuple[str, Start] | None:
    """The production stage of a multi-stage Dockerfile whose last stage (Docker's default
    target) is a test or development image built on it (`FROM prod AS test`, `CMD /bin/bash`)."""
    names = list(dockerfile.stages)
    if len(names) < 2 or not NOT_RELEASE_STAGE.match(names[-1]):
        return None
    if dockerfile.stages[names[-1]].cmd != dockerfile.cmd:
        return None  # the last stage read is not the last named one
    release = [name for name in names[:-1] if RELEASE_STAGE.match(name)]
    return (release[-1], dockerfile.stages[release[-1]]) if release else None


def _has_cmd(unit: tuple[Unit, list[ProcessSpec]]) -> bool:
    """A Dockerfile unit that writes a CMD. One with only an ENTRYPOINT is listed only when kept:
    beside a compose file that builds it and gives the commands, it is no alternative."""
    return any(spec.dockerfile is not None and spec.dockerfile.cmd for spec in unit[1])


def _dockerfile_unit(s: Scan, base_env: Env) -> tuple[Unit, list[ProcessSpec]] | None:
    """The application's Dockerfile CMD, when nothing else describes the deployment. An image
    with an ENTRYPOINT and no CMD runs its ENTRYPOINT alone (an entry script that picks the
    server itself when given no arguments), as Docker does."""
    for rel, dockerfile in sorted(
        s.dockerfiles.items(), key=lambda item: (compose_score(item[0]) < -10, item[0])
    ):
        if (
            (dockerfile.cmd or dockerfile.entrypoint)
            and not POSTGRES_IMAGES.search(" ".join(dockerfile.base_images))
            and not infra_base(dockerfile)
            and runs_project_code(s, dockerfile)
        ):
            stage = _release_stage(dockerfile)
            start = stage[1] if stage else dockerfile.start()
            entry_at = Evidence(
                dockerfile.path,
                start.entrypoint_line,
                s.repo.quote(dockerfile.path, start.entrypoint_line),
            )
            cmd_at = Evidence(rel, start.cmd_line, s.repo.quote(rel, start.cmd_line))
            spec = ProcessSpec(
                "web",
                start.cmd or [],
                base_env.overlay(dockerfile.env),
                cmd_at if start.cmd else entry_at,
                Quantity(None, (), "web.hosts"),
                Quantity(1),
                entry_words=start.entrypoint,
                dockerfile=dockerfile,
                workdir=dockerfile.workdir or "",
                entry_at=entry_at if start.entrypoint else None,
                command_at=cmd_at if start.cmd else None,  # CMD's options are cited too
            )
            return Unit(
                rel,
                "dockerfile",
                (rel,),
                True,
                "a Dockerfile's CMD: nothing else describes the deployment"
                + (
                    f" (its `{stage[0]}` stage: the last one, `{list(dockerfile.stages)[-1]}`, "
                    "is a test or development image)"
                    if stage
                    else ""
                ),
            ), [spec]
    return None
