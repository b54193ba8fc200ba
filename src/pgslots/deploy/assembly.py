"""Assembly: the `Topology` of a repository, from discovery, process resolution, the
settings and the server.

    units.choose_units -> processes.resolve -> settings_policy.SettingsReader
    -> servers.shape_of (per process) -> server_facts -> ProcessGroups -> budget.recompute

Every number carries its evidence; what the files cannot show stays an unknown.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from pgslots.deploy import budget
from pgslots.deploy.discovery import ProcessSpec, Scan, project_roots, runs_project_code, scan
from pgslots.deploy.model import (
    AliasFact,
    ConcurrencyModel,
    ConnectionPolicy,
    Demand,
    GroupKind,
    ProcessGroup,
    Quantity,
    Topology,
)
from pgslots.deploy.processes import Resolved, cron_jobs, locate, managed_specs, resolve
from pgslots.deploy.readers import RepoFiles
from pgslots.deploy.readers.commands import (
    LAMBDA_PROGRAM,
    Launch,
    holds_no_database,
    launch_from_words,
    split_words,
)
from pgslots.deploy.readers.django_settings import SettingsRead
from pgslots.deploy.readers.drivers import driverless_image
from pgslots.deploy.readers.envfiles import Env
from pgslots.deploy.readers.scripts import runs_python_file
from pgslots.deploy.readers.versions import read_versions
from pgslots.deploy.server_facts import ServerFacts, host_pgbouncer, server_facts
from pgslots.deploy.servers import (
    Shape,
    backup_shape,
    freeradius_pool,
    freeradius_shape,
    shape_of,
    unknown_shape,
    unmodelled,
)
from pgslots.deploy.settings_policy import SettingsReader, django_facts, policy_from
from pgslots.deploy.shared_server import SharedServer, shared_server
from pgslots.deploy.units import choose_units
from pgslots.errors import InputError
from pgslots.evidence import Evidence


def build(root: Path, unit: str | None = None) -> Topology:
    """The topology of the deployment in `root`; `unit` names the deployment unit to audit
    instead of the one the rules choose (`--unit NAME`)."""
    s = scan(root)
    repo = s.repo
    projects = project_roots(s)
    if len(projects) > 1:
        # One deployment per run: several projects' files are not one budget.
        raise InputError(
            f"this tree holds {len(projects)} Django projects ({', '.join(p or '.' for p in projects)}): "
            "audit one of them with --project PATH",
            path=str(root),
        )
    # 1. the deployment description, each process followed to what really runs
    deployment = choose_units(s, unit)
    notes = s.notes + deployment.notes
    base_env = deployment.base_env
    specs = [each for spec in deployment.specs for each in (managed_specs(s, spec) or [spec])]
    resolved = [each for spec in specs for each in _through_managers(s, resolve(s, spec), notes)]
    notes.extend(note for item in resolved for note in item.notes)
    # 2. the settings, chosen from every process's environment
    # What the programs see (no shell-only variables). A Lambda function names its own settings
    # module for itself: the deployment's is chosen from the other processes when there are any.
    servers = [r for r in resolved if not _is_lambda(r)] or resolved
    envs = [r.env.process() for r in servers] or [base_env]
    # The folders the processes' images copy in: where their settings are when two projects share the tree.
    shipped = tuple(
        sorted(
            {
                src
                for r in resolved
                if r.spec.dockerfile is not None
                for src in r.spec.dockerfile.copies.values()
            }
        )
    )
    settings = SettingsReader(repo, s.resolver, envs, shipped)
    choice = settings.choice
    settings_for = settings.read
    server = server_facts(s, deployment.compose, notes)
    wrapped = [r for r in resolved if r.launch is not None and r.launch.pgbouncer_wrapper]
    if server.pgbouncer is None and wrapped and wrapped[0].launch is not None:
        # Heroku's pgbouncer buildpack: the wrapped programs talk to a pgbouncer on their own host.
        server.pgbouncer = host_pgbouncer(
            wrapped[0].env, wrapped[0].launch.pgbouncer_wrapper, wrapped[0].where
        )
    groups: list[ProcessGroup] = []
    left_out: list[Resolved] = []
    undecided: list[Resolved] = []
    unreadable: list[Resolved] = []
    modelled_images: set[str] = set()  # Dockerfiles that run the project's Django or Celery
    main_read = settings_for(base_env if not servers else servers[0].env.process())
    reaches: dict[int, list[AliasFact]] = {}  # the aliases each group's settings define
    for item in resolved:
        radius = freeradius_pool(item.spec.dockerfile, repo)
        if radius is not None:
            # FreeRADIUS's sql module: another client of the server, with its own pool.
            shape = freeradius_shape(radius, item.spec.name, item.where)
            held = shape.pool_held.value if shape.pool_held is not None else None
            policy = ConnectionPolicy(
                pool_min=held, pool_max=shape.per_process.value, pool_evidence=radius.evidence
            )
            groups.extend(_groups(item, shape, policy, [], server))
            continue
        if item.spec.client == "backup":
            groups.extend(_groups(item, backup_shape(item.where), ConnectionPolicy(), [], server))
            continue
        if (
            item.launch is None
            and item.spec.unknown_reason
            and item.spec.third_party
            and not item.spec.client
        ):
            undecided.append(
                item
            )  # an image without database settings: a client only if nothing else runs
            continue
        if item.launch is None and (item.spec.unknown_reason or item.spec.client):
            groups.extend(_unknown_group(item, server))
            continue
        if item.launch is None:
            unreadable.append(
                item
            )  # the project's own process, or not: decided once the images are known
            continue
        read = settings.read(item.env.process(), own=_is_lambda(item))

        def in_image(
            word: str, spec: ProcessSpec = item.spec
        ) -> str | None:  # bound to this item's spec
            return locate(s, word, spec)

        modelled = shape_of(
            item.launch,
            item.spec.name,
            item.env,
            item.where,
            repo,
            s.resolver,
            read,
            item.spec.workdir,
            in_image,
        )
        if modelled is None:
            left_out.append(item)
            continue
        shape = _without_driver(repo, item, modelled)
        shape = _runs_once(shape, item.spec.oneshot)
        if item.spec.dockerfile is not None:
            modelled_images.add(item.spec.dockerfile.path)
        policy, aliases = policy_from(read)
        if shape.kind == "web" and (main_read is None or _is_web(item)):
            main_read = read
        companions = list(item.companions)
        shape, folded = _fold_siblings(shape, item, companions, read, in_image, s)
        companions = [c for c in companions if c not in folded]
        before = len(groups)
        groups.extend(_groups(item, shape, policy, aliases, server))
        reaches.update({id(g): aliases for g in groups[before:]})
        # A process the server's master keeps running beside its workers (uWSGI attach-daemon),
        # one the start script sent to the background (`celery ... worker &`), and uWSGI's cron
        # commands (the master starts each at its schedule; it runs, then exits).
        beside = [
            (_beside_spec(item.spec, launch), launch, where, "")
            for launch, where in [
                (launch_from_words(split_words(command)), where) for command, where in shape.daemons
            ]
            + companions
        ] + [
            (spec, launch, where, "cron")
            for spec, launch, where in _cron_specs(item.spec, shape.crons)
        ]
        for spec, launch, where, schedule in beside:
            found = shape_of(
                launch, spec.name, item.env, where, repo, s.resolver, read, spec.workdir, in_image
            )
            if found is None:
                notes.append(
                    f"{item.spec.name}: {schedule + ' ' if schedule else ''}`{launch.text[:60]}` "
                    f"({where.location()}) is not a process pgslots models; left out"
                )
                continue
            groups.extend(
                _groups(
                    dataclasses.replace(item, spec=spec, launch=launch, where=where),
                    _runs_once(found, schedule) if schedule else found,
                    policy,
                    aliases,
                    server,
                )
            )
    shared = shared_server(main_read, policy_from(main_read)[1], repo)
    if shared is not None:
        groups = _on_shared_server(groups, reaches, shared, notes)
    rest = _Rest(s, server, settings_for, modelled_images, groups, notes)
    for item in left_out:
        rest.not_a_server(item)
    for item in unreadable:
        rest.unreadable(item, undecided)
    for item in undecided:
        rest.undecided(item, specs)
    facts = django_facts(main_read, choice, policy_from(main_read)[1] if main_read else [])
    facts = dataclasses.replace(facts, gaps=settings.gaps(main_read))
    if choice is None and not groups:
        raise InputError(
            "not a Django deployment pgslots can read: no Django project here (no manage.py, DJANGO_SETTINGS_MODULE "
            "or settings.py with DATABASES) and no process that runs Django or Celery (compose, Kubernetes, "
            "Procfile, supervisord, systemd)",
            path=str(root),
        )
    if choice is None:
        notes.append("no Django settings module found")
    if main_read is not None:
        notes.extend(main_read.evaluation.notes[:20])
    # 3. the role the app connects as
    slots = server.slots
    default_alias = next(
        (a for a in facts.aliases if a.name == (shared.alias if shared else "default")), None
    )
    if (
        default_alias is not None
        and slots.role is not None
        and default_alias.user
        and (not default_alias.user.startswith("$") or default_alias.user.startswith("${"))
    ):
        slots = dataclasses.replace(
            slots,
            role_is_superuser=(default_alias.user == slots.role),
            role=default_alias.user,
            role_evidence=slots.role_evidence + default_alias.evidence[:1],
        )
    elif (
        default_alias is not None
        and default_alias.user
        and (not default_alias.user.startswith("$") or default_alias.user.startswith("${"))
    ):
        slots = dataclasses.replace(
            slots, role=default_alias.user, role_evidence=default_alias.evidence[:1]
        )
    else:
        slots = dataclasses.replace(slots, role=None)
    topology = Topology(
        root=str(root),
        groups=tuple(groups),
        slots=slots,
        settings_module=choice.module if choice else None,
        pgbouncer=server.pgbouncer,
        versions=tuple(read_versions(repo)),
        notes=tuple(dict.fromkeys(notes)),
        read_errors=tuple(repo.read_errors),
        django=facts,
        sources=tuple(deployment.sources),
        unused_configs=tuple(server.unused_configs),
        units=tuple(deployment.units),
    )
    if server.pgbouncer is not None:
        pairs = _pairs(topology)
        topology = dataclasses.replace(
            topology, pgbouncer=dataclasses.replace(server.pgbouncer, pairs=pairs)
        )
    return budget.recompute(topology)


def _fold_siblings(
    shape: Shape,
    item: Resolved,
    companions: list[tuple[Launch, Evidence]],
    read: SettingsRead | None,
    in_image: Callable[[str], str | None],
    s: Scan,
) -> tuple[Shape, list[tuple[Launch, Evidence]]]:
    """Several `celery worker --detach` lines in one container (one per queue) are one group:
    the same program with the same shape, so their processes add up. Returns the main shape
    with the siblings' processes added, and the companions folded into it."""
    if item.launch is None or shape.extra_beat is not None or shape.per_process.value is None:
        return shape, []
    processes = shape.processes
    folded: list[tuple[Launch, Evidence]] = []
    for launch, where in companions:
        if launch.program != item.launch.program:
            continue
        sibling = shape_of(
            launch,
            item.spec.name,
            item.env,
            where,
            s.repo,
            s.resolver,
            read,
            item.spec.workdir,
            in_image,
        )
        if (
            sibling is None
            or sibling.extra_beat is not None
            or sibling.concurrency_model != shape.concurrency_model
            or sibling.per_process.value != shape.per_process.value
        ):
            continue
        total = (
            processes.value + sibling.processes.value
            if processes.value is not None and sibling.processes.value is not None
            else None
        )
        processes = Quantity(
            total,
            processes.evidence + sibling.processes.evidence,
            None if total is not None else (processes.unknown or sibling.processes.unknown),
        )
        folded.append((launch, where))
    if not folded:
        return shape, []
    note = f"{len(folded) + 1} `{item.launch.program}` processes started side by side in one container: one group"
    return dataclasses.replace(shape, processes=processes, notes=[*shape.notes, note]), folded


def _beside_spec(spec: ProcessSpec, launch: Launch) -> ProcessSpec:
    """A process beside the container's main one, named `<container>/<program>`."""
    label = (
        launch.positionals[0]
        if launch.program == "manage" and launch.positionals
        else launch.program
    )
    return dataclasses.replace(spec, name=f"{spec.name}/{label}")


@dataclasses.dataclass
class _Rest:
    """What becomes of the processes the first pass could not model: an unknown group when they
    are the project's (or talk to the database), a note when they hold no connection. Never a
    silent drop."""

    s: Scan
    server: ServerFacts
    settings_for: Callable[[Env], SettingsRead | None]
    modelled_images: set[str]  # Dockerfiles whose containers run the project's Django or Celery
    groups: list[ProcessGroup]
    notes: list[str]

    def not_a_server(self, item: Resolved) -> None:
        """A program was found, but it is not one pgslots models."""
        assert item.launch is not None
        if holds_no_database(item.launch.argv):
            self.notes.append(
                f"{item.spec.name}: `{item.launch.text[:60]}` holds no database connection (a proxy, cache or log helper)"
            )
        elif item.spec.client:
            self.groups.extend(_unknown_group(item, self.server))
        elif not runs_python_file(list(item.launch.argv)) and (
            item.spec.third_party
            or (
                item.spec.dockerfile is not None
                and not _projects_own(self.s, item.spec, self.modelled_images)
            )
        ):
            self.notes.append(
                f"{item.spec.name}: `{item.launch.text[:80]}` is not a server pgslots models; left out"
            )
        else:
            # The project's own image running a program we cannot read: unknown, not zero.
            _, aliases = policy_from(self.settings_for(item.env.process()))
            self.groups.extend(
                _groups(
                    item,
                    unmodelled(item.launch, item.spec.name, item.where),
                    ConnectionPolicy(),
                    aliases,
                    self.server,
                )
            )

    def unreadable(self, item: Resolved, undecided: list[Resolved]) -> None:
        """No program could be read from the start command (or there is none)."""
        words = " ".join(item.spec.words or item.spec.entry_words or [])
        why = (
            f"`{words[:60]}` is neither a program pgslots models nor a script in the repository"
            if words
            else f"no start command found ({item.spec.source.location()})"
        )
        program = (item.spec.words or item.spec.entry_words or [""])[0].rsplit("/", 1)[-1]
        if NOT_CLIENTS.search(program):
            self.notes.append(
                f"{item.spec.name}: `{program}` holds no database connection; not counted"
            )
        elif item.spec.client:
            self.groups.extend(_unknown_group(item, self.server))
        elif item.spec.third_party:
            undecided.append(
                dataclasses.replace(item, spec=dataclasses.replace(item.spec, unknown_reason=why))
            )
        elif _projects_own(self.s, item.spec, self.modelled_images):
            # The project's code with a start pgslots cannot read: unknown, never left out.
            self.groups.extend(
                _groups(
                    item,
                    unknown_shape(item.spec.name, why, item.where),
                    ConnectionPolicy(),
                    [],
                    self.server,
                )
            )
        else:
            self.notes.append(f"{item.spec.name}: {why}; not the project's image: left out")

    def undecided(self, item: Resolved, specs: list[ProcessSpec]) -> None:
        """An image the repository does not build, with no database settings: counted when it is
        the image of a counted group, or when nothing else of its unit runs."""
        counted = {
            _image_key(sp.image)
            for sp in specs
            if sp.image and any(g.name == sp.name for g in self.groups)
        }
        if item.spec.image and _image_key(item.spec.image) in counted:
            self.groups.extend(
                _unknown_group(item, self.server)
            )  # the same program as a counted group
        elif any(g.unit == item.spec.unit for g in self.groups):
            self.notes.append(
                f"{item.spec.name} ({item.spec.source.location()}): an image this repository does not build, with no "
                "database settings, beside the project's own processes: not counted as a client"
            )
        else:
            self.groups.extend(_unknown_group(item, self.server))


def _through_managers(s: Scan, item: Resolved, notes: list[str]) -> list[Resolved]:
    """An entry script that ends in a process manager (`exec supervisord -c ...`) starts its
    programs: each is resolved on its own, in the environment the script exported. A cron
    daemon starts its crontab's entries (`cron_jobs`)."""
    jobs = (
        cron_jobs(s, item.spec) if item.launch is None or item.launch.program == "other" else None
    )
    if jobs is not None:
        # A cron daemon runs its crontab's entries, each a one-shot job; none: no connection.
        if not jobs:
            notes.append(
                f"{item.spec.name}: `{' '.join(item.spec.words or [])[:60]}` runs no job (its crontab "
                "files have no active line): no database connection"
            )
        return [resolve(s, spec) for spec in jobs]
    argv = list(item.launch.argv) if item.launch is not None and item.launch.argv else []
    if (
        not argv
        or argv[0].rsplit("/", 1)[-1] != "supervisord"
        or (item.spec.words and item.spec.words[:1] == argv[:1])
    ):
        return [item]
    programs = managed_specs(
        s, dataclasses.replace(item.spec, words=argv, entry_words=None, env=item.env)
    )
    return [resolve(s, spec) for spec in programs] if programs else [item]


NOT_CLIENTS = re.compile(
    r"^(nginx|caddy|httpd|apache2|haproxy|redis-server|memcached|amazon-cloudwatch-agent|cloudwatch|"
    r"node_exporter|promtail|fluent-bit|td-agent|filebeat|telegraf|datadog-agent|certbot)$"
)


def _image_key(image: str) -> str:
    return (
        image.split("@", 1)[0].rsplit(":", 1)[0]
        if ":" in image.rsplit("/", 1)[-1]
        else image.split("@", 1)[0]
    )


def _projects_own(s: Scan, spec: ProcessSpec, modelled_images: set[str]) -> bool:
    """A process of the project: a Procfile, supervisord, systemd or Kubernetes entry without
    an image of its own, or a container of an image that runs the project's Python (another
    of its services runs Django or Celery, it is a Python image, or it copies the project in)."""
    dockerfile = spec.dockerfile
    if dockerfile is None:
        return True
    return dockerfile.path in modelled_images or runs_project_code(s, dockerfile)


def _runs_once(shape: Shape, oneshot: str) -> Shape:
    """A cron entry, deploy hook or boot job: one connection while it runs, none held."""
    if not oneshot or shape.concurrency_model in ("none", "job"):
        return shape
    when = {"cron": "cron", "deploy": "at each deploy", "boot": "once at boot"}.get(
        oneshot, oneshot
    )
    return dataclasses.replace(
        shape,
        concurrency_model="job",
        server_model=f"{shape.server_model} ({when}: runs, then exits)",
    )


def _cron_specs(
    spec: ProcessSpec, crons: list[tuple[str, Evidence]]
) -> list[tuple[ProcessSpec, Launch, Evidence]]:
    """A server's cron entries as one-shot groups `<name>/cron`: entries running the same
    command (`manage.py runjobs hourly|daily|...`) are one group whose runs can all start at
    the same minute, one process per entry; different commands are a group each."""
    by_command: dict[str, list[tuple[str, Evidence]]] = {}
    for command, where in crons:
        by_command.setdefault(" ".join(split_words(command)[:2]), []).append((command, where))
    out = []
    for index, entries in enumerate(by_command.values(), 1):
        command, where = entries[0]
        name = f"{spec.name}/cron" + (f"-{index}" if len(by_command) > 1 else "")
        replicas = Quantity(
            len(entries),
            tuple(e for _, e in entries),
        )
        out.append(
            (
                dataclasses.replace(spec, name=name, oneshot="cron", replicas=replicas),
                launch_from_words(split_words(command)),
                where,
            )
        )
    return out


def _unknown_group(item: Resolved, server: ServerFacts) -> list[ProcessGroup]:
    """A process that talks to the server but whose program pgslots cannot see: an unknown
    group with the reason and the evidence, settable with --assume."""
    spec = item.spec
    reason = spec.unknown_reason
    if not reason:
        command = item.launch.text[:60] if item.launch else " ".join(spec.words or [])[:60]
        image = (
            f"from {spec.dockerfile.path}, the image of another application (no Django or Celery)"
            if spec.dockerfile is not None and not spec.third_party
            else "from an image this repository does not build"
        )
        reason = f"runs `{command}` {image}" + (
            f"; it connects to the database ({spec.client_evidence.location()})"
            if spec.client_evidence
            else ""
        )
    where = spec.client_evidence or item.where
    return _groups(item, unknown_shape(spec.name, reason, where), ConnectionPolicy(), [], server)


def _pairs(topology: Topology) -> tuple[str, ...]:
    alias = next(
        (a for a in (topology.django.aliases if topology.django else ()) if a.name == "default"),
        None,
    )
    if alias is None:
        return ("?/?",)
    return (f"{alias.database or '?'}/{alias.user or '?'}",)


def _on_shared_server(
    groups: list[ProcessGroup],
    reaches: dict[int, list[AliasFact]],
    shared: SharedServer,
    notes: list[str],
) -> list[ProcessGroup]:
    """Each group counted with the aliases it has on the shared server; a group whose settings
    reach only the local server is not its client (shared_server.py)."""
    notes.append(shared.note("default"))
    out = []
    for group in groups:
        facts = reaches.get(id(group))
        if facts is None:
            out.append(group)
            continue
        on = tuple(a.name for a in facts if a.host == shared.host)
        if on:
            out.append(dataclasses.replace(group, aliases=on))
        else:
            reached = ", ".join(f"{a.name} ({a.host or 'no HOST'})" for a in facts) or "none"
            notes.append(
                f"{group.name}: its settings reach only {reached}, not {shared.host}: not a client of that server"
            )
    return out


def _is_lambda(item: Resolved) -> bool:
    return item.launch is not None and item.launch.program == LAMBDA_PROGRAM


def _is_web(item: Resolved) -> bool:
    return item.launch is not None and item.launch.program in (
        "gunicorn",
        "uvicorn",
        "daphne",
        "hypercorn",
        "granian",
        "uwsgi",
    )


def _without_driver(repo: RepoFiles, item: Resolved, shape: Shape) -> Shape:
    """A process whose image installs no PostgreSQL driver holds no connection, whatever it
    runs (a separate Celery app in its own image beside the Django services)."""
    dockerfile = item.spec.dockerfile
    files = driverless_image(repo, dockerfile) if dockerfile is not None else None
    if files is None or dockerfile is None:
        return shape
    return Shape(
        "other",
        f"{shape.server_model} (no PostgreSQL driver in its image)",
        "none",
        Quantity(1, (item.where,)),
        Quantity(0, (Evidence(dockerfile.path, None, f"installs {', '.join(files)}"),)),
        [
            f"its image ({dockerfile.path}) installs only {', '.join(files)}: no PostgreSQL "
            "driver, so it cannot connect to the database"
        ],
    )


def _groups(
    item: Resolved,
    shape: Shape,
    policy: ConnectionPolicy,
    aliases: list[AliasFact],
    server: ServerFacts,
) -> list[ProcessGroup]:
    spec = item.spec
    same = tuple(
        a.name
        for a in aliases
        if a.same_server is True
        and not (a.engine or "").startswith(("django.db.backends.sqlite", "(scheme"))
    )
    default = next((a for a in aliases if a.name == "default"), None)
    via = False
    if default is not None and default.host:
        host = default.host.lower()
        via = (
            host in {h.lower() for h in server.pgbouncer_hosts}
            or "pgbouncer" in host
            or (default.port or "") == "6432"
        )
    if server.pgbouncer is not None and server.pgbouncer.per_host:
        # only the programs the buildpack's wrapper starts talk to the host's pgbouncer
        via = item.launch is not None and bool(item.launch.pgbouncer_wrapper)
    if via and server.pgbouncer is not None:
        policy = dataclasses.replace(
            policy, via_pgbouncer=True, pgbouncer_pool_mode=server.pgbouncer.pool_mode
        )
    hosts = spec.hosts
    notes = list(shape.notes)
    if shape.kind == "beat":
        hosts = Quantity(1, (), None)
        notes.append("beat must run exactly once per deployment")
    elif shape.concurrency_model == "job":
        hosts = Quantity(1, (), None)  # a deploy job runs once, wherever
    evidence = (
        [item.where]
        + [e for q in (shape.processes, shape.per_process) for e in q.evidence]
        + item.script_evidence
    )
    if shape.concurrency_model != "none":
        evidence += list(policy.conn_max_age_evidence[:1]) + list(policy.pool_evidence[:1])
    if (spec.replicas.value or 0) > 1:
        evidence += list(spec.replicas.evidence[:1])  # `scale: 4`: the count is part of the figure
    by_location: dict[str, Evidence] = {}
    for found in evidence:
        by_location.setdefault(found.location(), found)  # one line cited once
    group = ProcessGroup(
        name=spec.name,
        kind=GroupKind(shape.kind),
        server_model=shape.server_model,
        hosts=hosts,
        processes=shape.processes,
        per_process=shape.per_process,
        aliases=same or ("default",),
        policy=policy,
        demand=Demand(0, 0),
        evidence=tuple(by_location.values()),
        command=item.launch.text if item.launch else "",
        concurrency_model=ConcurrencyModel(shape.concurrency_model),
        replicas=spec.replicas,
        max_replicas=spec.max_replicas,
        source=spec.source.location(),
        notes=tuple(notes),
        unit=spec.unit,
        unknown_reason=shape.notes[0].rsplit(": set ", 1)[0]
        if shape.concurrency_model == "unmodelled" and shape.notes
        else "",
    )
    out = [group]
    beat = shape.extra_beat
    if beat is not None:
        # Every worker container runs its own embedded beat (so several hosts schedule twice).
        out.append(
            dataclasses.replace(
                group,
                name=f"{spec.name}-beat",
                kind=GroupKind.BEAT,
                server_model=f"{beat.server_model} embedded (-B)",
                concurrency_model=ConcurrencyModel(beat.concurrency_model),
                processes=Quantity(1),
                per_process=beat.per_process,
                notes=("embedded beat (worker -B)", *beat.notes),
            )
        )
    return out
