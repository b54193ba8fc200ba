"""Process managers other than compose and Kubernetes: Procfile, supervisord, systemd,
and s6-overlay services inside an image.

Each yields named process definitions (a command line with its file and line, and a
process count when the format has one, like supervisord's `numprocs`).
"""

from __future__ import annotations

import configparser
import dataclasses
import fnmatch
import json
import re

import yaml

from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.yamlfile import line_of, load_all, load_file


@dataclasses.dataclass(frozen=True)
class ProcessDef:
    name: str
    command: str
    path: str
    line: int
    count: int | None = None  # numprocs
    env: tuple[tuple[str, str], ...] = ()
    directory: str | None = None  # the working directory the manager starts it in
    schedule: str | None = (
        None  # a cron entry: a one-shot run at each tick, not a long-running process
    )
    # A platform's instance count (Cloud Foundry `instances`), written at count_at: every
    # container of the process type wherever it runs. None there: unknown, at count_floor.
    count_at: tuple[str, int] | None = None
    count_floor: int = 1
    env_at: tuple[str, int] | None = None  # where `env` is written, when not at path:line


_PROCFILE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\s*:\s*(?P<command>.+)$")


def read_procfile(repo: RepoFiles, rel: str) -> list[ProcessDef]:
    out = []
    for number, line in enumerate(repo.lines(rel), start=1):
        match = _PROCFILE.match(line.strip())
        if match and not line.lstrip().startswith("#"):
            # `release:` (Heroku), `postdeploy:` (Scalingo) run once at each deploy, then exit.
            oneshot = "deploy" if match["name"] in ONE_SHOT_TYPES else None
            out.append(
                ProcessDef(match["name"], match["command"].strip(), rel, number, schedule=oneshot)
            )
    return out


_SUPERVISOR_ENV = re.compile(r"%\(ENV_([A-Za-z_][A-Za-z0-9_]*)\)[sd]")


ONE_SHOT_TYPES = frozenset({"release", "postdeploy", "predeploy"})


def read_dokku_scale(repo: RepoFiles, rel: str) -> dict[str, int]:
    """Dokku's DOKKU_SCALE (`worker=2`): how many containers of each process type run."""
    out = {}
    for line in repo.lines(rel):
        name, sep, value = line.strip().partition("=")
        if sep and value.strip().isdigit() and not name.startswith("#"):
            out[name.strip()] = int(value.strip())
    return out


_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


def read_crontab(repo: RepoFiles, rel: str, with_user: bool) -> list[ProcessDef]:
    """The active lines of a crontab file: `MIN HOUR DOM MON DOW [USER] COMMAND` or
    `@daily [USER] COMMAND` (a system crontab, /etc/cron.d or /etc/crontab, names the user).
    Comments, blank lines and `NAME=value` settings start nothing. Each entry is a one-shot run
    at its schedule, named by the program it runs (the manage.py command, else the program)."""
    out: list[ProcessDef] = []
    for number, line in enumerate(repo.lines(rel), start=1):
        words = line.split()
        if not words or words[0].startswith("#") or re.match(r"^[A-Za-z_]\w*=", words[0]):
            continue
        size = 1 if words[0].startswith("@") else 5
        if len(words) <= size + with_user or not all(
            _CRON_FIELD.match(w) for w in words[:size] if not w.startswith("@")
        ):
            continue
        command = words[size + with_user :]
        schedule = " ".join(words[:size])
        out.append(ProcessDef("", " ".join(command), rel, number, schedule=schedule))
    return out


def read_app_json_cron(repo: RepoFiles, rel: str) -> list[ProcessDef]:
    """Dokku's (and Heroku Scheduler-style) `cron` entries in app.json: each a one-shot
    container from the app's image at its schedule."""
    text = repo.text(rel)
    if not text or ('"cron"' not in text and '"scripts"' not in text):
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        repo.broken(rel, getattr(exc, "lineno", None), "invalid JSON")
        return []
    entries = data.get("cron") if isinstance(data, dict) else None
    out = []
    lines = text.splitlines()
    scripts = raw if isinstance(data, dict) and isinstance(raw := data.get("scripts"), dict) else {}
    # Dokku runs its predeploy/postdeploy hooks at every deploy; Heroku's top-level `postdeploy`
    # runs once when a review app is created, not in production.
    hooks = dict(dokku or {}) if isinstance(dokku := scripts.get("dokku"), dict) else {}
    for name, command in hooks.items():
        if isinstance(command, str) and name in ("predeploy", "postdeploy"):
            number = next((i for i, line in enumerate(lines, 1) if json.dumps(command) in line), 1)
            out.append(ProcessDef(name, command, rel, number, schedule="deploy"))
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
            continue
        command = entry["command"]
        number = next((i for i, line in enumerate(lines, 1) if json.dumps(command) in line), 1)
        out.append(
            ProcessDef(
                f"cron-{index + 1}", command, rel, number, schedule=str(entry.get("schedule", ""))
            )
        )
    crons = [d for d in out if d.name.startswith("cron-")]
    if len(crons) > 1 and len({" ".join(d.command.split()[:3]) for d in crons}) == 1:
        # The same command at several schedules (`manage.py runjobs hourly|daily|...`): one group
        # whose runs can overlap, one per entry.
        first = crons[0]
        out = [d for d in out if d not in crons] + [
            dataclasses.replace(first, name="cron", count=len(crons), schedule="cron")
        ]
    return out


def read_render(repo: RepoFiles, rel: str) -> list[ProcessDef]:
    """A Render blueprint (render.yaml): each service with a `startCommand` (web, worker,
    private service, cron job), its `numInstances` and literal `envVars`."""
    text = repo.text(rel) or ""
    if "{{" in text:
        # A project template's blueprint (`name: {{project_name}}`): read with the placeholders as names.
        try:
            docs = load_all(re.sub(r"\{\{\s*([\w.]+)\s*\}\}", "\u27e6\\1\u27e7", text))
        except yaml.YAMLError:
            docs = None
    else:
        docs = load_file(repo, rel)
    data = docs[0] if docs else None
    services = data.get("services") if isinstance(data, dict) else None
    out = []
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, dict) or not isinstance(service.get("startCommand"), str):
            continue
        env = tuple(
            (str(e["key"]), str(e["value"]))
            for e in service.get("envVars") or []
            if isinstance(e, dict) and "key" in e and "value" in e
        )
        count = (
            service.get("numInstances") if isinstance(service.get("numInstances"), int) else None
        )
        schedule = (
            str(service["schedule"])
            if service.get("type") == "cron" and service.get("schedule")
            else None
        )

        def restore(value: str) -> str:
            return value.replace("\u27e6", "{{").replace("\u27e7", "}}")

        out.append(
            ProcessDef(
                restore(str(service.get("name") or service.get("type") or "web")),
                restore(service["startCommand"]),
                rel,
                line_of(service, "startCommand") or 1,
                count,
                env,
                schedule=schedule,
            )
        )
    return out


def read_cloudfoundry(repo: RepoFiles, rel: str) -> list[ProcessDef]:
    """A Cloud Foundry manifest (`applications:`): each app's `command` (or its `processes:`),
    `instances` and literal `env`. An app without a command runs the process types of the
    Procfile in its `path` (the buildpack reads it): `web` with the app's `instances`, another
    type with its `processes:` entry's (Cloud Foundry starts non-web types at 0 instances)."""
    text = repo.text(rel) or ""
    if "applications:" not in text:
        return []
    docs = load_file(repo, rel)
    data = docs[0] if docs else None
    apps = data.get("applications") if isinstance(data, dict) else None
    apps = (
        [a for a in apps if isinstance(a, dict) and a.get("name")] if isinstance(apps, list) else []
    )
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    out = []
    for app in apps:
        env = raw_env if isinstance(raw_env := app.get("env"), dict) else {}
        pairs = tuple(
            (str(k), str(v)) for k, v in env.items() if isinstance(v, (str, int, float, bool))
        )
        processes = [p for p in app.get("processes") or [] if isinstance(p, dict)]
        commanded = [p for p in processes if p.get("command")]
        entries = [
            (f"{app['name']}/{p.get('type', 'web')}", p["command"], p.get("instances"), p)
            for p in commanded
        ] or (
            [(str(app["name"]), app["command"], app.get("instances"), app)]
            if isinstance(app.get("command"), str)
            else []
        )
        for name, command, instances, holder in entries:
            out.append(
                ProcessDef(
                    name,
                    str(command),
                    rel,
                    line_of(holder, "command") or 1,
                    _instances(instances) if instances is not None else 1,
                    pairs,
                    count_at=(rel, line_of(holder, "instances") or line_of(holder, "command") or 1),
                )
            )
        if not entries:
            procfile = join(folder, join(str(app.get("path") or "."), "Procfile"))
            prefix = f"{app['name']}/" if len(apps) > 1 else ""
            by_type = {str(p.get("type", "web")): p for p in processes}
            for each in read_procfile(repo, procfile) if repo.has(procfile) else []:
                if each.schedule:  # `release:` is Heroku's; Cloud Foundry does not run it
                    continue
                web = each.name == "web"
                entry: dict | None = by_type.get(each.name, app if web else None)
                raw = entry.get("instances") if entry is not None else None
                if raw is None and web:
                    entry, raw = app, app.get("instances")  # the app's instances are web's
                written = line_of(entry, "instances") if entry is not None else None
                out.append(
                    dataclasses.replace(
                        each,
                        name=prefix + each.name,
                        env=pairs,
                        env_at=(rel, line_of(app, "env") or line_of(app, "name") or 1),
                        # Unset: Cloud Foundry's default, 1 web instance; other types start at 0
                        # until `cf scale` (an unknown at floor 0, never a silent zero).
                        count=_instances(raw) if raw is not None else (1 if web else None),
                        count_at=(rel, written or line_of(app, "name") or 1),
                        count_floor=1 if web or raw is not None else 0,
                    )
                )
    return out


def _instances(raw: object) -> int | None:
    """`instances: 4`; a `((var))` from a vars file (or anything else) is not a number here."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    return int(raw) if isinstance(raw, str) and raw.strip().isdigit() else None


def cloudfoundry_score(defs: list[ProcessDef], rel: str) -> int:
    """How production a Cloud Foundry manifest looks: IS_PRODUCTION set, a production name."""
    score = 0
    if any(
        k.upper() in ("IS_PRODUCTION", "PRODUCTION") and v.lower() in ("true", "1", "yes")
        for d in defs
        for k, v in d.env
    ):
        score += 20
    words = set(re.split(r"[^a-z0-9]+", rel.rsplit("/", 1)[-1].lower())) | {
        w for d in defs for w in re.split(r"[^a-z0-9]+", d.name.lower())
    }
    if words & {"production", "prod", "stable", "live"}:
        score += 10
    if words & {
        "sandbox",
        "staging",
        "stage",
        "dev",
        "development",
        "test",
        "template",
        "example",
        "migrate",
    }:
        score -= 10
    return score


def read_supervisord(
    repo: RepoFiles, rel: str, follow_includes: bool = False, container_path: str | None = None
) -> list[ProcessDef]:
    """The programs of a supervisord file; with `follow_includes`, also those of the files its
    `[include] files = conf.d/*.conf` brings in (a path in the image is mapped to the repository
    through the folder the main file is copied from)."""
    text = repo.text(rel)
    if text is None:
        return []
    included: list[ProcessDef] = []
    if follow_includes and "[include]" in text:
        for path in _included_files(repo, rel, text, container_path):
            included.extend(read_supervisord(repo, path))
    if "[program:" not in text:
        return included
    # supervisord, like configparser here, starts an inline comment at " ;".
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, inline_comment_prefixes=(";",)
    )
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        repo.broken(
            rel, getattr(exc, "lineno", None), f"invalid supervisord file: {exc.__class__.__name__}"
        )
        return []
    lines = text.splitlines()
    out = []
    for section in parser.sections():
        if not section.startswith("program:") or not parser.has_option(section, "command"):
            continue
        # supervisord's `%(ENV_X)s` expands the variable X of supervisord's own environment.
        command = _SUPERVISOR_ENV.sub(
            lambda m: f"${{{m[1]}}}", parser.get(section, "command").strip()
        )
        # The `command` line of this program's own section (commands often share a prefix).
        header = next((i for i, line in enumerate(lines) if line.strip() == f"[{section}]"), 0)
        number = next(
            (
                i
                for i, line in enumerate(lines[header:], start=header + 1)
                if line.strip().startswith("command") and "=" in line
            ),
            header + 1,
        )
        count = None
        if parser.has_option(section, "numprocs"):
            try:
                count = int(parser.get(section, "numprocs"))
            except ValueError:
                count = None
        env = []
        if parser.has_option(section, "environment"):
            env.extend(
                re.findall(
                    r'([A-Za-z_][A-Za-z0-9_]*)="?([^",]*)"?', parser.get(section, "environment")
                )
            )
        directory = (
            parser.get(section, "directory").strip()
            if parser.has_option(section, "directory")
            else None
        )
        out.append(
            ProcessDef(section.split(":", 1)[1], command, rel, number, count, tuple(env), directory)
        )
    return out + included


def _included_files(repo: RepoFiles, rel: str, text: str, container_path: str | None) -> list[str]:
    match = re.search(r"^\[include\][^\[]*?^\s*files\s*=\s*(?P<files>.+)$", text, re.M | re.S)
    if not match:
        return []
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    image_folder = (
        container_path.rsplit("/", 1)[0] if container_path and "/" in container_path else None
    )
    out: list[str] = []
    for pattern in match["files"].split():
        if pattern.startswith("/"):
            if image_folder and pattern.startswith(image_folder + "/"):
                pattern = pattern[
                    len(image_folder) + 1 :
                ]  # `/etc/supervisor/conf.d/*.conf` beside `/etc/supervisor/supervisord.conf`
            else:
                continue
        wanted = f"{folder}/{pattern}" if folder else pattern
        out.extend(p for p in repo.paths if fnmatch.fnmatchcase(p, wanted) and p != rel)
    return sorted(set(out))


def read_s6_services(repo: RepoFiles) -> list[ProcessDef]:
    """s6-overlay v3 long-running services (`.../s6-overlay/s6-rc.d/<name>/run`, copied into
    the image): each `run` script starts one process. Oneshots (with an `up` file) only
    prepare the container and are left out."""
    out = []
    for rel in repo.paths:
        parts = rel.split("/")
        if (
            len(parts) < 4
            or parts[-1] != "run"
            or parts[-3] != "s6-rc.d"
            or "s6-overlay" not in parts
        ):
            continue
        folder = "/".join(parts[:-1])
        kind = (
            (repo.text(folder + "/type") or "longrun").strip()
            if repo.has(folder + "/type")
            else "longrun"
        )
        if kind != "longrun" or repo.has(folder + "/up"):
            continue
        name = parts[-2][4:] if parts[-2].startswith("svc-") else parts[-2]
        out.append(ProcessDef(name, rel, rel, 1))
    return out


def read_systemd(repo: RepoFiles, rel: str) -> list[ProcessDef]:
    """The `ExecStart=` of a unit (continued over lines ending in `\\`, as systemd joins them),
    with its `Environment=`; `Type=oneshot` runs once and exits (a job, not a server)."""
    out = []
    env = []
    oneshot = False
    lines = repo.lines(rel)
    index = 0
    while index < len(lines):
        number = index + 1
        stripped = lines[index].strip()
        index += 1
        while stripped.endswith("\\") and index < len(lines):
            stripped = stripped[:-1].rstrip() + " " + lines[index].strip()
            index += 1
        if stripped.startswith("Environment="):
            env.extend(
                re.findall(
                    r'"?([A-Za-z_][A-Za-z0-9_]*)=([^"\s]*)"?', stripped[len("Environment=") :]
                )
            )
        elif stripped.replace(" ", "") == "Type=oneshot":
            oneshot = True
        elif stripped.startswith("ExecStart="):
            command = stripped[len("ExecStart=") :].lstrip("-@+!")
            name = re.sub(
                r"\.service(\.j2|\.jinja2?)?$", "", rel.rsplit("/", 1)[-1]
            )  # an Ansible template too
            out.append(ProcessDef(name, command, rel, number, None, tuple(env)))
    return [dataclasses.replace(d, schedule="boot") for d in out] if oneshot else out


@dataclasses.dataclass(frozen=True)
class ImageProcess:
    """A process type of Heroku's container stack (heroku.yml): the image built from
    `dockerfile` (stage `target`), running `command` when `run:` gives one, else its CMD."""

    name: str
    dockerfile: str
    target: str | None
    command: str | None
    path: str  # the heroku.yml
    line: int
    oneshot: str = ""  # "deploy" for `release:`


def read_heroku_yml(repo: RepoFiles, rel: str) -> list[ImageProcess]:
    """heroku.yml: `build.docker.<type>: Dockerfile` (or `{dockerfile, target}`), `run.<type>:`
    (a command string, or `{command: [...], image: <type>}`), and the `release:` phase
    (`{image: <type>, command: [...]}`), which runs once at each deploy."""
    docs = load_file(repo, rel)
    data = _mapping(docs[0] if docs else None)
    docker = _mapping(_mapping(data.get("build")).get("docker"))
    run = _mapping(data.get("run"))
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    images: dict[str, tuple[str, str | None, int]] = {}
    for name, spec in docker.items():
        path, target = (
            (spec, None)
            if isinstance(spec, str)
            else (spec.get("dockerfile"), spec.get("target"))
            if isinstance(spec, dict)
            else (None, None)
        )
        if isinstance(path, str):
            images[str(name)] = (
                join(folder, path),
                str(target) if target else None,
                line_of(docker, name) or 1,
            )
    out = []
    for name, (path, target, line) in images.items():
        given = run.get(name)
        command = _heroku_command(given)
        out.append(ImageProcess(name, path, target, command, rel, line_of(run, name) or line))
    release = data.get("release")
    if isinstance(release, dict) and str(release.get("image") or "web") in images:
        path, target, _ = images[str(release.get("image") or "web")]
        command = _heroku_command(release)
        out.append(
            ImageProcess(
                "release",
                path,
                target,
                command,
                rel,
                line_of(data, "release") or 1,
                oneshot="deploy",
            )
        )
    return out


def _heroku_command(given: object) -> str | None:
    """`web: gunicorn app.wsgi`, or `{command: ["gunicorn app.wsgi"]}`: the command as one line."""
    if isinstance(given, dict):
        given = given.get("command")
    if isinstance(given, list):
        given = " ".join(str(part) for part in given)
    return str(given) if isinstance(given, str) and given.strip() else None


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}
