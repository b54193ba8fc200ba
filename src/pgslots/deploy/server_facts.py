"""Server facts: the PostgreSQL server and pgbouncer the deployment runs, as its files show
them (image tag, `-c` flags, a mounted postgresql.conf, the superuser role, pgbouncer's pool
settings). A server the repository does not run is external: its counts are unknowns.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy.discovery import (
    BACKUP_PROGRAMS,
    PGBOUNCER_IMAGES,
    POSTGRES_IMAGES,
    Scan,
    env_files_env,
)
from pgslots.deploy.model import PgbouncerSetup, Quantity, SlotBudget
from pgslots.deploy.readers import join
from pgslots.deploy.readers.docker import ComposeFile
from pgslots.deploy.readers.envfiles import Env, resolve_env_file
from pgslots.deploy.readers.postgres import (
    flags_from_argv,
    pgbouncer_from_env,
    read_pgbouncer_ini,
    read_postgresql_conf,
)
from pgslots.evidence import Evidence, Resolution


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
        if BACKUP_PROGRAMS.search(" ".join((service.entrypoint or []) + (service.command or []))):
            continue  # the postgres image running pg_dump: a client (a backup job), not the server
        if POSTGRES_IMAGES.search(image) or POSTGRES_IMAGES.search(base):
            has_server = True
            tag = re.search(r":(\d+)", image or base)
            if tag:
                version = Quantity(
                    int(tag[1]), (Evidence(service.file, service.line, f"image {image or base}"),)
                )
            env = env_files_env(s, service.env_files, notes).overlay(service.environment)
            user = env.get("POSTGRES_USER")
            missing = any(resolve_env_file(repo, rel)[0] is None for rel, _, _ in service.env_files)
            # The official image's superuser is POSTGRES_USER (default "postgres"); when it comes
            # from an env file that is not committed, the variable itself names the role.
            superuser = user.value if user else ("${POSTGRES_USER}" if missing else "postgres")
            superuser_ev = (
                (user.evidence,)
                if user
                else (
                    Evidence(
                        service.file,
                        service.line,
                        f"service {service.name}",
                        Resolution.LIBRARY_DEFAULT,
                        "official image: POSTGRES_USER defaults to postgres",
                    ),
                )
            )
            argv = service.command or []
            for name, raw in flags_from_argv(argv).items():
                if name in (
                    "max_connections",
                    "superuser_reserved_connections",
                    "reserved_connections",
                ):
                    try:
                        settings[name] = (
                            int(raw),
                            Evidence(
                                service.command_file,
                                service.command_line,
                                repo.quote(service.command_file, service.command_line),
                                Resolution.COMMAND_FLAG,
                            ),
                        )
                    except ValueError:
                        pass
            conf_target = flags_from_argv(argv).get("config_file")
            for volume, *_ in service.volumes:
                source, _, target = volume.partition(":")
                target = target.split(":")[0]
                folder = service.file.rsplit("/", 1)[0] if "/" in service.file else ""
                src = join(folder, source) if source.startswith(".") else source
                if repo.has(src) and (
                    (
                        target.endswith("postgresql.conf")
                        and (conf_target in (None, target) or "/docker-entrypoint" in target)
                    )
                    or target == conf_target
                ):
                    mounted.add(src)
                    for name, item in read_postgresql_conf(repo, src).items():
                        settings.setdefault(name, item)
                elif repo.has(src) and target.endswith(".conf"):
                    mounted.add(src)
            if dockerfile:
                for dest, src in dockerfile.copies.items():
                    if src.endswith("postgresql.conf") and (
                        conf_target == dest or "/docker-entrypoint-initdb.d" in dest
                    ):
                        mounted.add(src)
        if PGBOUNCER_IMAGES.search(image) or "pgbouncer" in service.name.lower():
            env = env_files_env(s, service.env_files, notes).overlay(service.environment)
            found = pgbouncer_from_env(env)
            folder = service.file.rsplit("/", 1)[0] if "/" in service.file else ""
            ini_paths = [
                src
                for volume, *_ in service.volumes
                for src in [join(folder, volume.split(":")[0])]
                if src.endswith(".ini") and repo.has(src)
            ]
            for ini in ini_paths:
                ini_settings, _ = read_pgbouncer_ini(repo, ini)
                for key, ini_item in ini_settings.items():
                    found.setdefault(key, ini_item)
            pgbouncer = _pgbouncer_setup(
                found,
                service.name,
                Evidence(
                    service.file,
                    service.line,
                    f"service {service.name} ({service.image or 'build'})",
                ),
            )
            pgbouncer_hosts.add(service.name)
    # Kubernetes: a pgbouncer deployment
    for container in s.manifests.containers:
        if container.image and PGBOUNCER_IMAGES.search(container.image):
            found = pgbouncer_from_env(container.env)
            pgbouncer = _pgbouncer_setup(
                found,
                container.workload,
                Evidence(container.path, container.line, f"{container.kind} {container.workload}"),
            )
            pgbouncer_hosts.add(container.workload)
        elif container.image and POSTGRES_IMAGES.search(container.image):
            has_server = True
            for name, raw in flags_from_argv(container.argv or []).items():
                if (
                    name
                    in ("max_connections", "superuser_reserved_connections", "reserved_connections")
                    and raw.isdigit()
                ):
                    settings[name] = (
                        int(raw),
                        Evidence(
                            container.path,
                            container.line,
                            f"-c {name}={raw}",
                            Resolution.COMMAND_FLAG,
                        ),
                    )
    unused = [
        Evidence(
            p, None, "a postgresql.conf that no service mounts: its settings are not in effect"
        )
        for p in repo.paths
        if p.rsplit("/", 1)[-1] == "postgresql.conf"
        and p not in mounted
        and ((compose is not None and has_server) or read_postgresql_conf(repo, p))
    ]

    def q(name: str, default: int | None, unknown: str) -> Quantity:
        if name in settings:
            return Quantity(settings[name][0], (settings[name][1],))
        if has_server and default is not None:
            return Quantity(
                default,
                (
                    Evidence(
                        "(PostgreSQL default)",
                        None,
                        f"{name} = {default}",
                        Resolution.LIBRARY_DEFAULT,
                    ),
                ),
            )
        if default is not None and name != "max_connections":
            return Quantity(
                default,
                (
                    Evidence(
                        "(PostgreSQL default)",
                        None,
                        f"{name} = {default}",
                        Resolution.LIBRARY_DEFAULT,
                    ),
                ),
            )
        return Quantity(None, (), unknown)

    slots = SlotBudget(
        max_connections=q("max_connections", 100, "server.max_connections"),
        superuser_reserved_connections=q(
            "superuser_reserved_connections", 3, "server.superuser_reserved_connections"
        ),
        reserved_connections=q("reserved_connections", 0, "server.reserved_connections"),
        role_is_superuser=None,
        other_clients=Quantity(None, (), "server.other_clients"),
        server_version=version,
        role=superuser,
        role_evidence=superuser_ev,
    )
    if not has_server:
        notes.append(
            "the PostgreSQL server is not part of the repository's deployment (external): its settings are unknowns"
        )
    return ServerFacts(slots, pgbouncer, pgbouncer_hosts, unused)


def host_pgbouncer(env: Env, wrapper: str, where: Evidence) -> PgbouncerSetup:
    """The pgbouncer Heroku's buildpack starts on each dyno (`bin/start-pgbouncer CMD`): its
    settings are the PGBOUNCER_* config vars; the buildpack's own defaults live outside the
    repository, so an unset pool size is unknown (`--assume pgbouncer.default_pool_size=N`)."""
    found = pgbouncer_from_env(env)
    setup = _pgbouncer_setup(found, f"{wrapper}: a pgbouncer on each host", where)
    mode = found.get("pool_mode")
    return dataclasses.replace(setup, pool_mode=mode[0].lower() if mode else None, per_host=True)


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
        pool_mode=(mode[0].lower() if mode else "session"),
        default_pool_size=number("default_pool_size"),
        max_client_conn=number("max_client_conn"),
        max_db_connections=number("max_db_connections"),
        reserve_pool_size=number("reserve_pool_size"),
        pairs=(),
        evidence=evidence,
        service=service,
        min_pool_size=number("min_pool_size"),
    )
