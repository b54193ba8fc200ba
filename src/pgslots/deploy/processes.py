"""Process resolution: how each process definition really starts.

A `ProcessSpec` names a command as the deployment file wrote it. Docker runs the entrypoint
with the command as its arguments; the entrypoint may wait (`wait-for-it ... --`), dispatch on
its first argument, or export variables and hand over; a start script may end in a server or
call another script; a process manager (supervisord, s6-overlay) starts several programs.
This module follows those steps to the server program that really runs, with the environment
it really gets (script exports on top of the container's), and where that was read.
"""

from __future__ import annotations

import dataclasses
import re

from pgslots.deploy import budget
from pgslots.deploy.discovery import (
    BACKUP_PROGRAMS,
    CRON_FILES,
    ProcessSpec,
    Scan,
    image_dockerfile,
)
from pgslots.deploy.model import Quantity
from pgslots.deploy.readers import join
from pgslots.deploy.readers.commands import (
    PROCFILE_MANAGERS,
    Launch,
    first_command,
    holds_no_database,
    launch_from_words,
    manages_without_database,
    nothing_runs,
    split_words,
    unwrap,
)
from pgslots.deploy.readers.docker import Dockerfile
from pgslots.deploy.readers.envfiles import Env, EnvValue
from pgslots.deploy.readers.launchers import find_launcher, installed_manage
from pgslots.deploy.readers.platforms import (
    ProcessDef,
    read_crontab,
    read_procfile,
    read_s6_services,
    read_supervisord,
)
from pgslots.deploy.readers.scripts import (
    apply_assignments,
    false_tests,
    hand_over,
    long_running,
    read_script,
    starts_other_programs,
)
from pgslots.deploy.servers import python_program
from pgslots.evidence import Evidence, Resolution


@dataclasses.dataclass
class Resolved:
    spec: ProcessSpec
    launch: Launch | None
    env: Env
    where: Evidence
    script_evidence: list[Evidence]
    companions: list[tuple[Launch, Evidence]] = dataclasses.field(
        default_factory=list
    )  # started with `&` beside it
    notes: list[str] = dataclasses.field(
        default_factory=list
    )  # what following it learnt (an entrypoint not in the repository)


def managed_specs(s: Scan, spec: ProcessSpec) -> list[ProcessSpec] | None:
    """A container whose main process is a process manager runs several programs: supervisord
    (`supervisord -c /etc/supervisord.conf`, the file found through the Dockerfile's COPY or
    by name) or s6-overlay (`ENTRYPOINT ["/init"]`, its `s6-rc.d/*/run` services). Each
    program becomes its own process definition, sharing the container's hosts and replicas."""
    program = unwrap(first_command(spec.words))[0] if spec.words else []
    head = program[0].rsplit("/", 1)[-1] if program else ""
    defs: list[ProcessDef] = []
    manager = ""
    env = spec.env
    if head != "supervisord" and (spec.entry_words or spec.words) and program[:1] != ["/init"]:
        # An entry or start script that sets the environment up and then execs supervisord:
        # its programs run with what the script exported (`%(ENV_WEB_WORKERS)s`).
        started = resolve(s, spec)
        if started.launch is not None and started.launch.program in (
            "supervisord",
            "procfile-manager",
        ):
            program, env = list(started.launch.argv), started.env.process()
            head = program[0].rsplit("/", 1)[-1]
    if head in PROCFILE_MANAGERS:
        # `honcho -f ProcfileMulti.docker start [NAME...]`: the process types of that Procfile (or the named ones).
        procfile = next(
            (w.split("=", 1)[1] for w in program if w.startswith(("--procfile=", "-f="))), None
        ) or next(
            (program[i + 1] for i, w in enumerate(program[:-1]) if w in ("-f", "--procfile")),
            "Procfile",
        )
        path = locate(s, procfile, spec) or (
            procfile.lstrip("./") if s.repo.has(procfile.lstrip("./")) else None
        )
        wanted = (
            [w for w in program[program.index("start") + 1 :] if not w.startswith("-")]
            if "start" in program
            else []
        )
        defs = [
            d
            for d in (read_procfile(s.repo, path) if path else [])
            if not wanted or d.name in wanted
        ]
        manager = head
    elif head == "supervisord":
        conf = next(
            (program[i + 1] for i, w in enumerate(program[:-1]) if w in ("-c", "--configuration")),
            None,
        )
        conf = next(
            (w.split("=", 1)[1] for w in program if w.startswith(("--configuration=", "-c="))), conf
        )
        path = locate(s, conf, spec) if conf else None
        if path is None:
            named = [
                p
                for p in s.repo.named("supervisord.conf", "supervisor.conf")
                if read_supervisord(s.repo, p, follow_includes=True)
            ]
            path = named[0] if len(named) == 1 else None
            conf = "/etc/supervisor/supervisord.conf" if path else conf
        defs, manager = (
            (
                read_supervisord(s.repo, path, follow_includes=True, container_path=conf)
                if path
                else []
            ),
            "supervisord",
        )
    elif program[:1] == ["/init"] or ((spec.entry_words or [])[:1] == ["/init"] and not spec.words):
        defs, manager = (
            read_s6_services(s.repo),
            "s6-overlay",
        )  # s6-overlay's init starts the services
    if not defs:
        return None
    base = env
    out = []
    for item in defs:
        env = base.overlay(
            {k: EnvValue(k, v, Evidence(item.path, item.line, f"{k}={v}")) for k, v in item.env}
        )
        replicas = spec.replicas
        if item.count and item.count > 1:
            replicas = Quantity(
                budget.floor(spec.replicas) * item.count,
                spec.replicas.evidence
                + (Evidence(item.path, item.line, f"numprocs={item.count}"),),
            )
        out.append(
            dataclasses.replace(
                spec,
                name=f"{spec.name}/{item.name}",
                words=split_words(item.command),
                env=env,
                replicas=replicas,
                source=Evidence(
                    item.path,
                    item.line,
                    f"{manager} program {item.name} in {spec.name} ({spec.source.location()})",
                ),
                entry_words=None,
                workdir=item.directory or spec.workdir,
                command_at=None,
                entry_at=None,
            )
        )
    return out


CRON_DAEMONS = frozenset({"cron", "crond", "supercronic", "go-crond"})


def cron_jobs(s: Scan, spec: ProcessSpec) -> list[ProcessSpec] | None:
    """A cron daemon (`cron -f`, `crond`, `supercronic FILE`) starts the jobs of the crontab
    files its image holds (COPY to /etc/cron.d/, /etc/crontab, /var/spool/cron/, supercronic's
    argument; busybox's /etc/crontabs/): each active line is a one-shot run of its command, sharing the container's
    hosts and replicas. None when the daemon is not one or no crontab file can be seen; an
    empty list when the crontab files start nothing (only comments)."""
    program = unwrap(first_command(spec.words))[0] if spec.words else []
    head = program[0].rsplit("/", 1)[-1] if program else ""
    if head == "busybox" and program[1:2] == ["crond"]:
        head = "crond"
    if head not in CRON_DAEMONS:
        return None
    files: list[tuple[str, bool]] = []  # (repository path, the lines name a user)
    if head == "supercronic":
        named = next((w for w in program[1:] if not w.startswith("-")), None)
        path = locate(s, named, spec) if named else None
        files += [(path, False)] if path else []
    for dockerfile in _with_bases(s, spec.dockerfile) if spec.dockerfile else []:
        for dest, src in dockerfile.copies.items():
            system = dest == "/etc/crontab" or dest.startswith("/etc/cron.d")
            if not (system or dest.startswith(("/var/spool/cron", "/etc/crontabs"))):
                continue
            if s.repo.has(src):
                files.append((src, system))
            else:  # a folder copied into /etc/cron.d/
                prefix = src.rstrip("/") + "/"
                files += [(p, system) for p in s.repo.paths if p.startswith(prefix)]
    if not files:
        return None
    defs = [
        d
        for path, system in dict.fromkeys(files)
        for d in read_crontab(s.repo, path, system)
        # a pg_dump line of a crontab file in the repository is already a backup group (cron_backups)
        if not (CRON_FILES.search(path) and BACKUP_PROGRAMS.search(" " + d.command))
    ]
    out: list[ProcessSpec] = []
    for item in defs:
        words = split_words(item.command)
        label = words[words.index("manage.py") + 1] if "manage.py" in words[:-1] else words[0]
        name = spec.name if len(defs) == 1 else f"{spec.name}/{label.rsplit('/', 1)[-1]}"
        taken = sum(1 for o in out if o.name == name or o.name.startswith(name + "-"))
        out.append(
            dataclasses.replace(
                spec,
                name=f"{name}-{taken + 1}" if taken else name,
                words=words,
                source=Evidence(
                    item.path,
                    item.line,
                    f"cron entry `{item.schedule}` in {spec.name} ({spec.source.location()})",
                ),
                entry_words=None,
                command_at=None,
                entry_at=None,
                oneshot="cron",
            )
        )
    return out


def _with_bases(s: Scan, dockerfile: Dockerfile) -> list[Dockerfile]:
    """The Dockerfile and those of the base images the repository builds (`FROM org/app-base`):
    a file copied into the base image is in this one too."""
    chain = [dockerfile]
    while len(chain) < 4:
        linked = next(
            (
                found
                for base in chain[-1].base_images
                if (found := image_dockerfile(s, base)) is not None
            ),
            None,
        )
        if linked is None or linked[0] in chain:
            break
        chain.append(linked[0])
    return chain


def locate(s: Scan, word: str, spec: ProcessSpec) -> str | None:
    """The repository file a command word names inside the image (`/start` -> its source)."""
    repo = s.repo
    dockerfiles = (
        _with_bases(s, spec.dockerfile) if spec.dockerfile else list(s.dockerfiles.values())
    )
    if spec.workdir and not word.startswith("/") and "$" not in word:
        # `bash init_command.sh` runs in the image's WORKDIR: the file copied there.
        absolute = "/" + join(spec.workdir, word[2:] if word.startswith("./") else word)
        for dockerfile in dockerfiles:
            found = _copied(repo, dockerfile, absolute)
            if found is not None:
                return found
    for dockerfile in dockerfiles:
        if dockerfile is None:
            continue
        if "/" not in word:  # a command found through PATH (`docker-entrypoint.sh`)
            for folder in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin"):
                if repo.has(dockerfile.copies.get(f"{folder}/{word}", "")):
                    return dockerfile.copies[f"{folder}/{word}"]
        found = _copied(repo, dockerfile, word)
        if found is not None:
            return found
    for prefix in (spec.workdir, "/app", "/code", "/srv", "/usr/src/app", "/opt/app", ""):
        if prefix and word.startswith(prefix.rstrip("/") + "/"):
            candidate = word[len(prefix.rstrip("/")) + 1 :]
            if repo.has(candidate):
                return candidate
    plain = word[2:] if word.startswith("./") else word.lstrip("/")
    if repo.has(plain):
        return plain
    matches = repo.named(word.rsplit("/", 1)[-1])
    if len(matches) == 1:
        return matches[0]
    return _packaged_from(repo, plain)


def _packaged_from(repo, path: str) -> str | None:
    """`bin/mathesar`, which the image's build generates from `build-scripts/bin/mathesar.sh`:
    the one `<folder>/<name>.sh` of the repository that a build script names as its input."""
    if "/" not in path:
        return None
    folder, name = path.rsplit("/", 2)[-2:]
    sources = [p for p in repo.named(f"{name}.sh") if p.endswith(f"/{folder}/{name}.sh")]
    if len(sources) != 1:
        return None
    source = sources[0]
    named_by = (
        rel
        for rel in repo.paths
        if rel != source
        and rel.endswith((".py", ".sh", "Makefile"))
        and source in (repo.text(rel) or "")
    )
    return source if next(named_by, None) is not None else None


def _copied(repo, dockerfile: Dockerfile, path: str) -> str | None:
    """The repository file a COPY put at `path` in the image (itself, or inside a copied folder)."""
    if path in dockerfile.copies and repo.has(dockerfile.copies[path]):
        return dockerfile.copies[path]
    for dest, src in dockerfile.copies.items():
        if dest and path.startswith(dest.rstrip("/") + "/"):
            candidate = (src.rstrip("/") + "/" if src not in (".", "") else "") + path[
                len(dest.rstrip("/")) + 1 :
            ]
            if repo.has(candidate):
                return candidate
    return None


def resolve(s: Scan, spec: ProcessSpec) -> Resolved:
    env = spec.env
    evidence: list[Evidence] = []
    notes: list[str] = []
    where = spec.source
    if spec.entry_words and "--" in spec.entry_words[1:]:
        # `wait-for-it.sh db:5432 -t 30 -- /entrypoint-uwsgi.sh`, `dockerize ... --`, `tini --`:
        # the entrypoint waits, then runs what follows `--` (with the command as its arguments).
        tail = spec.entry_words[spec.entry_words.index("--", 1) + 1 :]
        spec = dataclasses.replace(spec, entry_words=None, words=tail + list(spec.words or []))
    if spec.entry_words or spec.words:
        # ENTRYPOINT + CMD, through wrappers and entry scripts ending in `exec "$@"`.
        argv = list(spec.entry_words or []) + list(spec.words or [])
        passed = hand_over(argv, env, s.repo, lambda word: locate(s, word, spec))
        env = passed.env
        notes = passed.notes
        evidence.extend(passed.cited)
        program = unwrap(first_command(passed.argv))[0]
        position = (
            len(argv)
            - len(passed.argv)
            + (passed.argv.index(program[0]) if program and program[0] in passed.argv else 0)
        )
        if position < len(spec.entry_words or []) and spec.entry_at is not None:
            # The program is named in the ENTRYPOINT (`["gunicorn", "app.wsgi"]`); CMD adds options.
            if spec.words and spec.command_at is not None:
                evidence.append(spec.command_at)
            spec = dataclasses.replace(spec, command_at=spec.entry_at)
        spec = dataclasses.replace(spec, entry_words=None, words=passed.argv)
        if passed.exits and not spec.oneshot:
            # The entry script runs its set-up commands, then `exec "$@"` with no command: the container exits.
            spec = dataclasses.replace(spec, oneshot="deploy")
    words = spec.words or []
    launch = launch_from_words(words) if words else None
    if launch is not None and launch.program == "other":
        launch = installed_manage(launch, env, s.repo) or launch
    companions: list[tuple[Launch, Evidence]] = []
    # `python app.py` where app.py plainly starts gevent's WSGI server or an RQ worker: read as such.
    plain = (
        launch is not None
        and launch.program == "other"
        and python_program(launch, s.repo, s.resolver, lambda word: locate(s, word, spec))
        is not None
    )
    launcher = (
        find_launcher(unwrap(first_command(words))[0], s.repo, lambda word: locate(s, word, spec))
        if launch is not None and launch.program == "other" and not plain
        else None
    )
    if launcher is not None:
        # `python jms start all`, `sentry run web`: the project's Python decides what runs.
        where = spec.command_at or Evidence(
            spec.source.path, spec.source.line, s.repo.quote(spec.source.path, spec.source.line)
        )
        reason = f"{launcher.why}; it starts its servers itself, in code pgslots does not follow"
        return Resolved(
            dataclasses.replace(spec, unknown_reason=reason),
            None,
            env,
            where,
            evidence,
            companions,
            notes,
        )
    if (
        launch is not None
        and launch.program == "other"
        and words
        and not holds_no_database(launch.argv)
        and not plain
    ):
        launch, env, where, periodic = follow_script(
            s, spec, words, env, where, evidence, depth=0, companions=companions
        )
        if periodic and not spec.oneshot:
            # `while true; do manage.py run_periodic; sleep 60; done`: a one-shot command run again and again
            spec = dataclasses.replace(spec, oneshot="cron")
    elif launch is not None and spec.command_at is not None:
        where = spec.command_at
    elif launch is not None and spec.source.line is not None:
        where = Evidence(
            spec.source.path, spec.source.line, s.repo.quote(spec.source.path, spec.source.line)
        )
    if launch is not None and launch.inline_env:
        env = env.overlay(
            {
                k: EnvValue(k, v, Evidence(where.path, where.line, f"{k}={v}"))
                for k, v in launch.inline_env.items()
            }
        )
    return Resolved(spec, launch, env, where, evidence, companions, notes)


INTERPRETERS = re.compile(r"^(ba|da|z|a)?sh$|^python[0-9.]*$|^env$|^exec$")


def follow_script(
    s: Scan,
    spec: ProcessSpec,
    words: list[str],
    env: Env,
    where: Evidence,
    evidence: list[Evidence],
    depth: int,
    companions: list[tuple[Launch, Evidence]] | None = None,
):
    # `bash -c "cron start && wait-for-it.sh db:5432 -- /app/start.sh"`: the script the chain ends in.
    words = unwrap(first_command(words))[0] or words
    # `["/bin/bash", "/app/compose/production/django/start"]`: the script is the argument.
    scripts = [
        w for w in words if not w.startswith("-") and not INTERPRETERS.match(w.rsplit("/", 1)[-1])
    ]
    target = next(
        (w for w in scripts if "/" in w or w.endswith(".sh")), scripts[0] if scripts else words[0]
    )
    path = locate(s, target, spec)
    script = read_script(s.repo, path) if path else None
    if script is None:
        return None, env, where, False
    arg = next(iter(words[words.index(target) + 1 :]), "") if target in words else ""
    if script.hands_over and arg in script.functions:
        # `web() { exec gunicorn ...; }` ... `"$@"`: the argument names the function to run.
        body_launches, body_assignments = script.functions[arg]
        script = dataclasses.replace(
            script,
            launches=tuple(i for i in body_launches if not i.guard),
            assignments=script.assignments + body_assignments,
        )
    launches = list(script.launches)
    dispatching = bool(script.dispatch_values()) or any(item.guard for item in launches)
    env = apply_assignments(script, env, s.repo, arg if dispatching else None)
    # Branches on the environment (`if [ "$MODULE_NAME" = 'dashboard' ]`) that cannot run here.
    runnable = [item for item in launches if not false_tests(item, env)]
    if launches and not runnable:
        # `if [[ -n "$ENABLE_FLOWER" ]]; then celery flower; else echo ...`: none of them runs here.
        tests = sorted({test for item in launches for test in false_tests(item, env)})
        why = f"{script.path}: none of its programs runs here ({'; '.join(tests)[:120]}: false)"
        return nothing_runs(why), env, where, False
    launches = runnable
    if any(item.guard for item in launches):
        # Dispatch on "$1": the branch its argument selects, else the default (`*`, `else`) branch.
        chosen_branch = [i for i in launches if i.guard and arg in i.guard] or [
            i for i in launches if i.guard and "*" in i.guard
        ]
        launches = chosen_branch or [i for i in launches if not i.guard]
    servers = [item for item in launches if item.launch.program not in ("manage", "other")]
    foreground = [item for item in servers if not item.background] or servers
    # Set-up steps only (a release script): the last one that uses the database stands for them.
    steps = [item for item in launches if not manages_without_database(item.launch)] or launches
    chosen = foreground[-1] if foreground else (steps[-1] if steps else None)
    last_call = script.calls[-1] if script.calls else None
    if (
        last_call is not None
        and depth < 3
        and not foreground
        and chosen is not None
        and last_call[1] > chosen.line
    ):
        # The script ends by running another script (`./docker/scripts/start_gunicorn.sh` after
        # `manage.py migrate`): that script's process is the container's, not the set-up step.
        followed = follow_script(
            s, spec, [last_call[0]], env, where, evidence, depth + 1, companions
        )
        if followed[0] is not None:
            return followed
    if chosen is not None and arg and any(w in ("$1", "${1}") for w in chosen.launch.argv):
        # `python $1` in `rq-run.sh short-running-worker.py`: the script's argument is the file.
        argv = [arg if w in ("$1", "${1}") else w for w in chosen.launch.argv]
        chosen = dataclasses.replace(
            chosen,
            launch=dataclasses.replace(
                launch_from_words(argv), inline_env=chosen.launch.inline_env
            ),
        )
    if chosen is not None and chosen.launch.program == "other":
        where = Evidence(
            chosen.path or script.path,
            chosen.line,
            s.repo.quote(chosen.path or script.path, chosen.line),
            Resolution.COMMAND_FLAG,
        )
        return chosen.launch, env, where, False  # reported as a program pgslots does not model
    if companions is not None:
        companions.extend(
            (
                item.launch,
                Evidence(
                    item.path or script.path,
                    item.line,
                    s.repo.quote(item.path or script.path, item.line),
                    Resolution.COMMAND_FLAG,
                ),
            )
            for item in launches
            if item is not chosen
            and (
                (item.background and item in servers)
                or (
                    item.launch.program == "manage"
                    and (
                        (item.background and long_running(item.launch))
                        or starts_other_programs(item.launch)
                    )
                )
            )
        )  # `celery ... worker &`, `manage.py qcluster | tee log &`, `manage.py start_service all`: beside the main process
    if chosen is None and script.calls and depth < 3:
        word, _ = script.calls[-1]
        return follow_script(s, spec, [word], env, where, evidence, depth + 1, companions)
    if chosen is None:
        return None, env, where, False
    where = Evidence(
        chosen.path or script.path,
        chosen.line,
        s.repo.quote(chosen.path or script.path, chosen.line),
        Resolution.COMMAND_FLAG,
    )
    periodic = (
        chosen.looped and chosen.launch.program == "manage" and not long_running(chosen.launch)
    )
    return chosen.launch, env, where, periodic
