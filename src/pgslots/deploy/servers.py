"""From a start command to a process group's shape: server model, processes, concurrency.

One function per server family, each reading the options the way the server itself does
(gunicorn: WEB_CONCURRENCY < gunicorn.conf.py < GUNICORN_CMD_ARGS < command line; uvicorn:
--workers, else WEB_CONCURRENCY; Celery 5: -c, else the CELERY_WORKER_CONCURRENCY variable
(Click's auto_envvar_prefix), else the app's worker_concurrency, else os.cpu_count()).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable

from pgslots.deploy.model import Quantity
from pgslots.deploy.readers import RepoFiles, join
from pgslots.deploy.readers.commands import (
    LAMBDA_PROGRAM,
    NO_DATABASE_COMMANDS,
    ONE_SHOT_COMMANDS,
    Launch,
    expand,
    parse_launch,
    runs_python_file,
    split_words,
)
from pgslots.deploy.readers.cpus import module_formulas
from pgslots.deploy.readers.django_settings import SettingsRead
from pgslots.deploy.readers.docker import Dockerfile
from pgslots.deploy.readers.envfiles import MISSING_ENV, UNKNOWN_VALUE, Env
from pgslots.deploy.readers.freeradius import (
    RADIUS_IMAGES,
    RadiusPool,
    config_folder,
    read_sql_pool,
)
from pgslots.deploy.readers.pyeval import Evaluator, ModuleResolver, V
from pgslots.deploy.readers.pyprograms import IN_PROCESS_WORKERS, PythonProgram, read_program
from pgslots.deploy.readers.pysource import parse_source
from pgslots.deploy.readers.scripts import starts_other_programs
from pgslots.deploy.readers.versions import read_versions
from pgslots.evidence import Evidence, Resolution


@dataclasses.dataclass
class Shape:
    kind: str  # web, worker, beat, other
    server_model: str
    concurrency_model: str
    processes: Quantity
    per_process: Quantity
    notes: list[str] = dataclasses.field(default_factory=list)
    extra_beat: Shape | None = None  # celery worker -B: the embedded beat's own shape
    daemons: list[tuple[str, Evidence]] = dataclasses.field(
        default_factory=list
    )  # uWSGI attach-daemon commands
    pool_held: Quantity | None = None  # a client's own pool (FreeRADIUS): connections kept open
    crons: list[tuple[str, Evidence]] = dataclasses.field(
        default_factory=list
    )  # uWSGI cron commands: one-shot runs at their schedule


UNBOUNDED = Quantity(None)


def _int_option(
    raw: str | None, env: Env, where: Evidence, unknown: str, label: str
) -> Quantity | None:
    """An option value (maybe `$VAR`) as a Quantity; None when the option is absent."""
    if raw is None:
        return None
    expanded = expand(raw, env)
    evidence = (where,) + tuple(v.evidence for v in expanded.used)
    if expanded.value is None:
        formula = _cpu_formula_of(raw, expanded)
        if formula is not None:
            return Quantity(None, evidence, unknown.rsplit(".", 1)[0] + ".cpus", formula=formula)
        return Quantity(None, evidence, unknown)
    try:
        return Quantity(int(expanded.value.strip()), evidence)
    except ValueError:
        return Quantity(None, evidence, unknown)


def _cpu_formula_of(raw: str, expanded) -> str | None:
    """`--workers $WEB_CONCURRENCY` where the script set WEB_CONCURRENCY=$((2*$(nproc)+1)): its formula."""
    formulas = [v.formula for v in expanded.used if v.formula]
    if (
        len(expanded.used) == 1
        and formulas
        and re.fullmatch(r"\$\{?[A-Za-z_]\w*\}?", raw.strip().strip("\"'"))
    ):
        return formulas[0]
    return None


def _env_int(env: Env, name: str, unknown: str) -> Quantity | None:
    found = env.exported(name)
    if found is None:
        return None
    if found.value == UNKNOWN_VALUE:
        if found.formula:
            return Quantity(
                None, (found.evidence,), unknown.rsplit(".", 1)[0] + ".cpus", formula=found.formula
            )
        return Quantity(None, (found.evidence,), unknown)
    try:
        return Quantity(int(found.value.strip()), (found.evidence,))
    except ValueError:
        return Quantity(None, (found.evidence,), unknown)


def _not_visible(env: Env, name: str, unknown: str) -> Quantity | None:
    """Unknown (rather than the library default) when the variable may be in an env file
    that the repository does not contain."""
    missing = env.get(MISSING_ENV)
    if missing is None:
        return None
    first = missing.value.split(" and ")[0]
    return Quantity(
        None,
        (
            Evidence(
                first,
                None,
                f"{name} may be set in {missing.value} (not in the repository)",
                Resolution.ENV_FILE,
            ),
        ),
        unknown,
    )


def _from_v(value: V | None, unknown: str) -> Quantity | None:
    if value is None:
        return None
    if value.known and isinstance(value.value, int) and not isinstance(value.value, bool):
        return Quantity(value.value, value.evidence)
    if value.known and isinstance(value.value, str) and value.value.strip().isdigit():
        return Quantity(int(value.value.strip()), value.evidence)
    return Quantity(None, value.evidence, unknown)


# ----------------------------------------------------------------------------- gunicorn


def gunicorn(
    launch: Launch,
    name: str,
    env: Env,
    where: Evidence,
    repo: RepoFiles,
    resolver: ModuleResolver,
    workdir: str,
    locate: Callable[[str], str | None] | None = None,
) -> Shape:
    notes: list[str] = []
    options = dict(launch.options)
    # GUNICORN_CMD_ARGS overrides the config file, the command line overrides both.
    cmd_args = env.exported("GUNICORN_CMD_ARGS")
    env_options: dict[str, str] = {}
    if cmd_args is not None:
        env_options = parse_launch(["gunicorn", *split_words(cmd_args.value)]).options
    config_ns: dict[str, V] = {}
    formulas: dict[str, str] = {}
    raw_config = options.get("config") or env_options.get("config")
    config_path = (
        locate(raw_config)
        if locate and raw_config and not raw_config.startswith("python:")
        else None
    ) or _gunicorn_config(raw_config, repo, workdir, options.get("chdir"))
    if config_path:
        config_ns = Evaluator(repo, env, resolver).run(config_path).namespace
        formulas = _cpu_formulas(repo, config_path)
        notes.append(f"gunicorn settings read from {config_path}")

    def setting(option: str, conf_name: str, unknown: str) -> Quantity | None:
        raw = options.get(option)
        if raw is not None:
            return _int_option(raw, env, where, unknown, option)
        if option in env_options:
            return _int_option(
                env_options[option], env, cmd_args.evidence if cmd_args else where, unknown, option
            )
        if conf_name in config_ns:
            found = _from_v(config_ns[conf_name], unknown)
            read = config_ns[conf_name]
            if (
                found is not None
                and found.value is None
                and conf_name in formulas
                and (read.env_var is None or read.env_default)
            ):
                # `threads = min(multiprocessing.cpu_count(), 12)`: a formula of the host's CPUs, capped.
                cpus = f"{name}.cpus"
                notes.append(f"{conf_name} = {formulas[conf_name]} ({config_path}): set {cpus}=N")
                return Quantity(None, found.evidence, cpus, formula=formulas[conf_name])
            return found
        return None

    workers = (
        setting("workers", "workers", f"{name}.processes")
        or _env_int(env, "WEB_CONCURRENCY", f"{name}.processes")
        or _not_visible(env, "WEB_CONCURRENCY", f"{name}.processes")
    )
    if workers is None:
        workers = Quantity(
            1,
            (
                Evidence(
                    where.path,
                    where.line,
                    where.text,
                    Resolution.LIBRARY_DEFAULT,
                    "gunicorn default workers=1 (WEB_CONCURRENCY not set)",
                ),
            ),
        )
    threads = setting("threads", "threads", f"{name}.per_process")
    worker_class_v = options.get("worker_class") or env_options.get("worker_class")
    if (
        worker_class_v is None
        and "worker_class" in config_ns
        and isinstance(config_ns["worker_class"].value, str)
    ):
        worker_class_v = config_ns["worker_class"].value
    worker_class = (
        (expand(worker_class_v, env).value or worker_class_v) if worker_class_v else "sync"
    )
    low = worker_class.lower()
    if (
        any(k in low for k in ("uvicorn", "asgi"))
        or low in ("asgi",)
        or _custom_asgi_worker(worker_class, repo, resolver)
    ):
        limit = _worker_limit(worker_class, repo, resolver)
        if limit is not None:
            return Shape(
                "web",
                f"asgi (gunicorn -k {worker_class}, limit_concurrency {limit.value})",
                "asgi",
                workers,
                limit,
                notes,
            )
        notes.append(
            f"{worker_class} passes no concurrency limit to uvicorn: in-flight requests per process are unbounded"
        )
        own = _worker_class_node(worker_class, repo, resolver)
        # The project's own worker class is where a limit would go (its CONFIG_KWARGS).
        per_process = (
            Quantity(
                None,
                (
                    Evidence(
                        own[0],
                        own[1].lineno,
                        repo.quote(own[0], own[1].lineno),
                        Resolution.LITERAL,
                        "the project's worker class",
                    ),
                ),
            )
            if own
            else UNBOUNDED
        )
        return Shape(
            "web", f"asgi (gunicorn -k {worker_class})", "asgi", workers, per_process, notes
        )
    if (
        low in ("gevent", "eventlet", "gevent_wsgi", "gevent_pywsgi")
        or "ggevent" in low
        or "geventworker" in low
    ):
        connections = setting(
            "worker_connections", "worker_connections", f"{name}.per_process"
        ) or Quantity(
            1000,
            (
                Evidence(
                    where.path,
                    where.line,
                    where.text,
                    Resolution.LIBRARY_DEFAULT,
                    "gunicorn default worker_connections=1000",
                ),
            ),
        )
        return Shape("web", f"gunicorn {low} (greenlets)", "greenlets", workers, connections, notes)
    if low in ("gthread",) or (
        low in ("sync", "") and threads is not None and (threads.value is None or threads.value > 1)
    ):
        if low != "gthread":
            notes.append("gunicorn switches the sync worker to gthread when --threads > 1")
        return Shape("web", "gunicorn gthread", "threads", workers, threads or Quantity(1), notes)
    return Shape("web", "gunicorn sync", "sync", workers, Quantity(1), notes)


def _cpu_formulas(repo: RepoFiles, path: str) -> dict[str, str]:
    try:
        return module_formulas(parse_source(repo.text(path) or "", path)[0])
    except (SyntaxError, ValueError):
        return {}


def _gunicorn_config(
    raw: str | None, repo: RepoFiles, workdir: str, chdir: str | None
) -> str | None:
    if raw:
        if raw.startswith("python:"):
            return ModuleResolver(repo).find(raw[len("python:") :])
        for base in (workdir, ""):
            candidate = join(base, raw.lstrip("/")) if not raw.startswith("/") else raw.lstrip("/")
            if repo.has(candidate):
                return candidate
        name = raw.rsplit("/", 1)[-1]
        matches = repo.named(name)
        return matches[0] if len(matches) == 1 else None
    # gunicorn reads ./gunicorn.conf.py from its working directory by default
    for base in (workdir, ""):
        candidate = join(base, "gunicorn.conf.py")
        if repo.has(candidate):
            return candidate
    return None


def _worker_class_node(
    path: str, repo: RepoFiles, resolver: ModuleResolver
) -> tuple[str, ast.ClassDef] | None:
    module, _, cls = path.rpartition(".")
    if not module:
        return None
    file = resolver.find(module)
    if file is None:
        return None
    text = repo.text(file)
    try:
        tree, _ = parse_source(text or "", file)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return file, node
    return None


def _custom_asgi_worker(worker_class: str, repo: RepoFiles, resolver: ModuleResolver) -> bool:
    found = _worker_class_node(worker_class, repo, resolver)
    if not found:
        return False
    return any(
        "Uvicorn" in ast.unparse(base) or "ASGI" in ast.unparse(base) for base in found[1].bases
    )


def _worker_limit(worker_class: str, repo: RepoFiles, resolver: ModuleResolver) -> Quantity | None:
    """`CONFIG_KWARGS = {..., "limit_concurrency": N}` in a UvicornWorker subclass of the project."""
    found = _worker_class_node(worker_class, repo, resolver)
    if not found:
        return None
    file, node = found
    for statement in node.body:
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id == "CONFIG_KWARGS" for t in statement.targets)
        ):
            for key, value in zip(statement.value.keys, statement.value.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "limit_concurrency"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, int)
                ):
                    return Quantity(
                        value.value,
                        (
                            Evidence(
                                file,
                                value.lineno,
                                repo.quote(file, value.lineno),
                                Resolution.LITERAL,
                            ),
                        ),
                    )
    return None


# ----------------------------------------------------------------------------- other web servers


def uvicorn(launch: Launch, name: str, env: Env, where: Evidence) -> Shape:
    """uvicorn's CLI reads each option from the command line, else UVICORN_<OPTION> (click's
    auto_envvar_prefix); the worker count then falls back to WEB_CONCURRENCY, then 1."""
    workers = _int_option(
        launch.option("workers"), env, where, f"{name}.processes", "workers"
    ) or _env_int(env, "UVICORN_WORKERS", f"{name}.processes")
    if workers is None:
        workers = (
            _env_int(env, "WEB_CONCURRENCY", f"{name}.processes")
            or _not_visible(env, "WEB_CONCURRENCY", f"{name}.processes")
            or Quantity(
                1,
                (
                    Evidence(
                        where.path,
                        where.line,
                        where.text,
                        Resolution.LIBRARY_DEFAULT,
                        "uvicorn default workers=1",
                    ),
                ),
            )
        )
    limit = _int_option(
        launch.option("limit_concurrency"), env, where, f"{name}.per_process", "limit_concurrency"
    ) or _env_int(env, "UVICORN_LIMIT_CONCURRENCY", f"{name}.per_process")
    if limit is not None:
        return Shape(
            "web",
            f"asgi (uvicorn --limit-concurrency {limit.value if limit.value is not None else '?'})",
            "asgi",
            workers,
            limit,
        )
    return Shape(
        "web",
        "asgi (uvicorn)",
        "asgi",
        workers,
        UNBOUNDED,
        ["uvicorn without --limit-concurrency: in-flight requests per process are unbounded"],
    )


def daphne(launch: Launch, name: str, env: Env, where: Evidence) -> Shape:
    return Shape(
        "web",
        "asgi (daphne)",
        "asgi",
        Quantity(1, (where,)),
        UNBOUNDED,
        ["daphne has no concurrency limit"],
    )


def hypercorn(launch: Launch, name: str, env: Env, where: Evidence) -> Shape:
    workers = _int_option(
        launch.option("workers"), env, where, f"{name}.processes", "workers"
    ) or Quantity(1, (where,))
    return Shape(
        "web",
        "asgi (hypercorn)",
        "asgi",
        workers,
        UNBOUNDED,
        ["hypercorn has no per-process concurrency limit"],
    )


def granian(launch: Launch, name: str, env: Env, where: Evidence) -> Shape:
    """Granian: each option from the command line, else its GRANIAN_<OPTION> variable."""

    def option(key: str, unknown: str) -> Quantity | None:
        raw = launch.option(key)
        if raw is not None:
            return _int_option(raw, env, where, unknown, key)
        return _env_int(env, f"GRANIAN_{key.upper()}", unknown)

    workers = option("workers", f"{name}.processes") or Quantity(
        1,
        (
            Evidence(
                where.path,
                where.line,
                where.text,
                Resolution.LIBRARY_DEFAULT,
                "granian default: 1 worker",
            ),
        ),
    )
    raw_interface = (
        launch.option("interface")
        or getattr(env.exported("GRANIAN_INTERFACE"), "value", None)
        or "rsgi"
    )
    interface = (expand(raw_interface, env).value or "").lower()
    if interface not in ("wsgi", "asgi", "asginl", "rsgi"):
        # `--interface %(ENV_GRANIAN_INTERFACE)s` set where the repository cannot show: WSGI (threads) or
        # ASGI (unbounded) is not known, so neither is the demand per worker.
        return Shape(
            "web",
            f"granian ({raw_interface}: interface unknown)",
            "threads",
            workers,
            Quantity(None, (where,), f"{name}.per_process"),
            [
                f"granian's interface {raw_interface} is set outside the files read: set {name}.per_process"
            ],
        )
    if interface == "wsgi":
        threads = option("blocking_threads", f"{name}.per_process")
        return Shape(
            "web",
            "granian wsgi",
            "threads",
            workers,
            threads or Quantity(None, (where,), f"{name}.per_process"),
        )
    limit = option("backpressure", f"{name}.per_process")
    notes = (
        []
        if limit
        else [
            "granian without --backpressure: in-flight requests per worker are taken as unbounded (its backlog-derived default is not modelled)"
        ]
    )
    return Shape("web", f"asgi (granian {interface})", "asgi", workers, limit or UNBOUNDED, notes)


UWSGI_DAEMONS = (
    "attach_daemon",
    "attach_daemon2",
    "smart_attach_daemon",
    "smart_attach_daemon2",
    "attach_control_daemon",
)
UWSGI_CRONS = ("cron", "unique_cron", "cron2", "unique_cron2")


def _uwsgi_cron_command(key: str, value: str) -> str:
    """The command of a uWSGI cron line: after five schedule fields (`cron`, `unique-cron`),
    or after the `key=value,...` spec (`cron2`)."""
    parts = value.split(None, 1 if key.endswith("cron2") else 5)
    return parts[-1] if len(parts) == (2 if key.endswith("cron2") else 6) else ""


def uwsgi(
    launch: Launch,
    name: str,
    env: Env,
    where: Evidence,
    repo: RepoFiles,
    locate: Callable[[str], str | None],
) -> Shape:
    """uWSGI: the command line, then its ini file (`--ini FILE` or the file as an argument),
    then `UWSGI_<OPTION>` variables, as uWSGI itself layers them. `attach-daemon` lines are
    processes the master keeps running beside the workers (often `manage.py` loops); `cron` and
    `unique-cron` lines are commands it starts at their schedule (one-shot jobs)."""
    options: dict[str, tuple[str, Evidence]] = {k: (v, where) for k, v in launch.options.items()}
    daemons: list[tuple[str, Evidence]] = []
    crons: list[tuple[str, Evidence]] = []
    notes: list[str] = []
    ini = launch.options.get("ini") or next(
        (p for p in launch.positionals if p.endswith(".ini")), None
    )
    ini_path = (
        (locate(ini) or next(iter(repo.named(ini.rsplit("/", 1)[-1])), None)) if ini else None
    )
    if ini_path:
        notes.append(f"uWSGI settings read from {ini_path}")
        for key, value, evidence in _uwsgi_ini(repo, ini_path, env):
            if key in UWSGI_DAEMONS:
                daemons.append((value, evidence))
            elif key in UWSGI_CRONS:
                command = _uwsgi_cron_command(key, value)
                if command:
                    crons.append((command, evidence))
            elif key not in options:
                options[key] = (value, evidence)
    for key in ("processes", "workers", "threads", "gevent"):
        found = env.exported(f"UWSGI_{key.upper()}")
        if key not in options and found is not None:
            options[key] = (found.value, found.evidence)
    if "workers" in options and "processes" not in options:
        options["processes"] = options["workers"]

    def number(key: str, unknown: str) -> Quantity | None:
        if key not in options:
            return None
        raw, evidence = options[key]
        return _int_option(raw, env, evidence, unknown, key)

    processes = number("processes", f"{name}.processes") or _uwsgi_default_processes(
        name, where, bool(ini_path or launch.options or launch.positionals or _uwsgi_env(env))
    )
    if not processes.known and "processes" not in options:
        notes.append(
            "uwsgi is given no option, ini file or UWSGI_* variable: it cannot serve like that, so "
            "its options (processes too) come from the deployment's environment, not in the repository"
        )
    gevent = number("gevent", f"{name}.per_process")
    if gevent is not None:
        return Shape(
            "web",
            "uwsgi gevent",
            "greenlets",
            processes,
            gevent,
            notes,
            daemons=daemons,
            crons=crons,
        )
    threads = number("threads", f"{name}.per_process")
    if threads is not None and (threads.value is None or threads.value > 1):
        return Shape(
            "web",
            "uwsgi threads",
            "threads",
            processes,
            threads,
            notes,
            daemons=daemons,
            crons=crons,
        )
    return Shape(
        "web", "uwsgi", "sync", processes, Quantity(1), notes, daemons=daemons, crons=crons
    )


def _uwsgi_env(env: Env) -> bool:
    """Some `UWSGI_<OPTION>` variable is in the environment uWSGI is started with."""
    return any(key.startswith("UWSGI_") and value.exported for key, value in env.values.items())


def _uwsgi_default_processes(name: str, where: Evidence, configured: bool) -> Quantity:
    """uWSGI's own default of one process, when it is configured at all. A bare `uwsgi` (no
    option, no ini file, no UWSGI_* variable) refuses to start without a socket: whoever runs it
    sets its options, processes included, in an environment the repository does not hold."""
    if not configured:
        return Quantity(
            None,
            (
                Evidence(
                    where.path,
                    where.line,
                    where.text,
                    Resolution.LITERAL,
                    "bare uwsgi: configured by UWSGI_* variables set outside the repository",
                ),
            ),
            f"{name}.processes",
        )
    return Quantity(
        1,
        (
            Evidence(
                where.path,
                where.line,
                where.text,
                Resolution.LIBRARY_DEFAULT,
                "uWSGI default: 1 process",
            ),
        ),
    )


def _uwsgi_ini(repo: RepoFiles, path: str, env: Env) -> list[tuple[str, str, Evidence]]:
    """(option, value, evidence) of the `[uwsgi]` section, honouring `if-env`/`if-not-env`
    blocks against the environment and uWSGI's `$(VAR)` placeholders."""
    out: list[tuple[str, str, Evidence]] = []
    section = "uwsgi"
    skipping: list[bool] = []
    for number, line in enumerate(repo.lines(path), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            continue
        key, sep, value = stripped.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if section != "uwsgi":
            continue
        if key in ("if_env", "if_not_env"):
            found = env.exported(value)
            present = found is not None and found.value != ""
            skipping.append(present if key == "if_not_env" else not present)
            continue
        if key == "endif":
            if skipping:
                skipping.pop()
            continue
        if any(skipping):
            continue
        value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", r"${\1}", value)
        out.append(
            (key, value if sep else "", Evidence(path, number, stripped, Resolution.LITERAL))
        )
    return out


# ----------------------------------------------------------------------------- Celery


CeleryConf = Callable[[str], "V | None"]
"""A Celery setting by its lowercase name, as the worker's app sees it."""


def celery_conf(
    launch: Launch,
    env: Env,
    repo: RepoFiles,
    resolver: ModuleResolver,
    settings: SettingsRead | None,
) -> CeleryConf:
    """Celery settings as the app named by `-A` sees them: what its module sets on
    `app.conf` after `config_from_object` (e.g. `app.conf.beat_scheduler = ...` in
    `proj/celery.py`) wins over the Django settings' `CELERY_*` names. Celery looks for the
    app in the module, then in its `celery` submodule; so does this."""
    app_conf: dict = {}
    module = (launch.option("app") or "").split(":", 1)[0]
    for candidate in (module, f"{module}.celery") if module else ():
        path = resolver.find(candidate)
        found = (
            Evaluator(repo, env, resolver).run(path).namespace.get("__celery_conf__")
            if path
            else None
        )
        if found is not None and isinstance(found.value, dict):
            app_conf = found.value
            break

    def lookup(name: str) -> V | None:
        value = app_conf.get(name.lower())
        if value is not None:
            return value
        return settings.celery(name) if settings is not None else None

    return lookup


def celery_worker(launch: Launch, name: str, env: Env, where: Evidence, conf: CeleryConf) -> Shape:
    notes: list[str] = []
    concurrency = _int_option(
        launch.option("concurrency"), env, where, f"{name}.cpus", "concurrency"
    )
    autoscale = launch.option("autoscale")
    if autoscale:
        # The autoscaler grows the pool up to its maximum, whatever --concurrency says.
        expanded = expand(autoscale, env)
        try:
            concurrency = Quantity(
                int((expanded.value or "").split(",")[0]),
                (where,) + tuple(v.evidence for v in expanded.used),
            )
            notes.append("--autoscale: the maximum is used")
        except ValueError:
            # `--autoscale $WEB_CONCURRENCY,2` with WEB_CONCURRENCY=$((2*$(nproc)+1)): the maximum's formula
            concurrency = _int_option(
                autoscale.split(",")[0], env, where, f"{name}.cpus", "autoscale"
            )
            notes.append("--autoscale: the maximum is used")
    if concurrency is None:
        concurrency = _env_int(env, "CELERY_WORKER_CONCURRENCY", f"{name}.cpus")
        if concurrency is not None:
            notes.append(
                "CELERY_WORKER_CONCURRENCY in the environment sets --concurrency (Celery 5 reads CELERY_WORKER_* variables)"
            )
    if concurrency is None:
        concurrency = _from_v(conf("worker_concurrency"), f"{name}.cpus")
    if concurrency is None:
        concurrency = Quantity(
            None,
            (
                Evidence(
                    where.path,
                    where.line,
                    where.text,
                    Resolution.LIBRARY_DEFAULT,
                    "no -c, no worker_concurrency: Celery uses os.cpu_count() of the host",
                ),
            ),
            f"{name}.cpus",
        )
        notes.append("celery-default-concurrency")
    pool = launch.option("pool")
    if pool is None and env.exported("CELERY_WORKER_POOL") is not None:
        pool = env.value("CELERY_WORKER_POOL")
    if pool is None:
        setting = conf("worker_pool")
        pool = setting.value if setting is not None and isinstance(setting.value, str) else None
    pool = (expand(pool, env).value or pool).lower() if pool else "prefork"
    # `-B` runs a beat inside the worker, with the scheduler the app is configured for.
    beat = celery_beat(launch, name, env, where, conf) if "beat" in launch.options else None
    if pool in ("threads", "thread"):
        return Shape(
            "worker", "celery threads", "celery-threads", Quantity(1), concurrency, notes, beat
        )
    if pool in ("gevent", "eventlet"):
        return Shape(
            "worker", f"celery {pool}", "celery-green", Quantity(1), concurrency, notes, beat
        )
    if pool == "solo":
        return Shape("worker", "celery solo", "solo", Quantity(1), Quantity(1), notes, beat)
    return Shape("worker", "celery prefork", "prefork", concurrency, Quantity(1), notes, beat)


def celery_beat(launch: Launch, name: str, env: Env, where: Evidence, conf: CeleryConf) -> Shape:
    scheduler = launch.option("scheduler")
    evidence: tuple[Evidence, ...] = (where,)
    if scheduler is None:
        setting = conf("beat_scheduler")
        if setting is not None and isinstance(setting.value, str):
            scheduler, evidence = setting.value, setting.evidence
    if scheduler and ("DatabaseScheduler" in scheduler or scheduler == "django"):
        return Shape(
            "beat",
            "celery beat (DatabaseScheduler)",
            "beat-db",
            Quantity(1, evidence),
            Quantity(1, evidence),
        )
    if not scheduler or scheduler.rsplit(".", 1)[-1].rsplit(":", 1)[-1] == "PersistentScheduler":
        return Shape(
            "beat",
            "celery beat (file scheduler)",
            "none",
            Quantity(1, evidence),
            Quantity(0),
            [
                "the default PersistentScheduler keeps its schedule in a file: no database connection"
            ],
        )
    short = scheduler.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    if "redbeat" in scheduler.lower():
        return Shape(
            "beat",
            f"celery beat ({short}, Redis)",
            "none",
            Quantity(1, evidence),
            Quantity(0),
            ["redbeat keeps its schedule and lock in Redis: no database connection"],
        )
    return Shape(
        "beat",
        f"celery beat ({short})",
        "none",
        Quantity(1, evidence),
        Quantity(0),
        [
            f"{scheduler} is not Django's DatabaseScheduler: counted as holding no database connection"
        ],
    )


_BARE_VARIABLE = re.compile(
    r"^\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:\[[@*]\])?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))$"
)
"""`$ARGS`, `${ARGS}` or a bash array `"${ARGS[@]}"` (whose elements are words of their own)."""


def _split_unquoted_variables(launch: Launch, env: Env) -> tuple[Launch, tuple[Evidence, ...]]:
    """`exec celery ... worker ${EXTRA_PARAMS}`: a variable standing alone as an argument
    whose value holds several words (`--autoscale=8,2 --prefetch-multiplier=128`) is split into
    them, as the shell does, and the command is read again with those options. Also returns
    where the variables split from their value alone were set (their options cite no line)."""
    argv: list[str] = []
    cited: list[Evidence] = []
    changed = False
    for word in launch.argv:
        match = _BARE_VARIABLE.match(word)
        found = env.get(match["braced"] or match["plain"]) if match else None
        expanded = expand(word, env).value if match else None
        if expanded is not None and (
            len(split_words(expanded)) != 1 or expanded.startswith("-")
        ):  # `$SCALING` = "--autoscale=2,2"
            # Split the value as written when the script built it from other variables, so the
            # options still cite where each of those was set.
            template = found.template if found is not None and found.template else None
            if template is not None and expand(template, env).value is None:
                # built from the script's own (unexported) variables: the value is what the child sees
                template = None
            if template is None and found is not None and expanded.strip():
                cited.append(found.evidence)
            argv.extend(split_words(template or expanded))
            changed = True
        else:
            argv.append(word)
    if not changed:
        return launch, ()
    return dataclasses.replace(
        parse_launch(argv), inline_env=launch.inline_env, pgbouncer_wrapper=launch.pgbouncer_wrapper
    ), tuple(cited)


def shape_of(
    launch: Launch,
    name: str,
    env: Env,
    where: Evidence,
    repo: RepoFiles,
    resolver: ModuleResolver,
    settings: SettingsRead | None,
    workdir: str,
    locate: Callable[[str], str | None] | None = None,
) -> Shape | None:
    """`locate` maps a path inside the image to the repository file (the Dockerfile's COPY)."""
    launch, cited = _split_unquoted_variables(launch, env)
    shape = _shape_of(launch, name, env, where, repo, resolver, settings, workdir, locate)
    if shape is None or not cited:
        return shape
    # `%(ENV_CELERY_MAIN_OPTIONS)s` = "--concurrency 2": the counts also come from where it was set
    return dataclasses.replace(
        shape,
        processes=dataclasses.replace(shape.processes, evidence=shape.processes.evidence + cited),
        per_process=dataclasses.replace(
            shape.per_process, evidence=shape.per_process.evidence + cited
        ),
    )


def _shape_of(
    launch: Launch,
    name: str,
    env: Env,
    where: Evidence,
    repo: RepoFiles,
    resolver: ModuleResolver,
    settings: SettingsRead | None,
    workdir: str,
    locate: Callable[[str], str | None] | None = None,
) -> Shape | None:
    program = launch.program
    if program == LAMBDA_PROGRAM:
        return aws_lambda(launch, name, where, repo)
    if program == "gunicorn":
        return gunicorn(launch, name, env, where, repo, resolver, workdir, locate)
    if program == "uvicorn":
        return uvicorn(launch, name, env, where)
    if program == "daphne":
        return daphne(launch, name, env, where)
    if program == "hypercorn":
        return hypercorn(launch, name, env, where)
    if program == "granian":
        return granian(launch, name, env, where)
    if program == "uwsgi":
        return uwsgi(launch, name, env, where, repo, locate or (lambda word: None))
    legacy = _manage_celery_without_djcelery(launch, name, where, repo)
    if legacy is not None:
        return legacy
    if program == "celery-worker":
        return celery_worker(
            launch, name, env, where, celery_conf(launch, env, repo, resolver, settings)
        )
    if program == "celery-beat":
        return celery_beat(
            launch, name, env, where, celery_conf(launch, env, repo, resolver, settings)
        )
    if program == "rq-worker" or (program == "manage" and launch.positionals[:1] == ("rqworker",)):
        # `rq worker`, django-rq's `manage.py rqworker` (which closes Django's connections first)
        return rq_worker_shape(launch.option("worker_class") or "", where)
    if program == "other" and locate is not None:
        found = python_program(launch, repo, resolver, locate)
        if found is not None:
            return program_shape(found, repo, name)
    if program == "nothing":
        return Shape(
            "other",
            "no program (this branch of the start script runs none)",
            "none",
            Quantity(1, (where,)),
            Quantity(0),
            [launch.text],
        )
    if program in ("celery-flower", "celery-other"):
        return Shape(
            "other",
            "celery flower" if program == "celery-flower" else "celery (other command)",
            "none",
            Quantity(1),
            Quantity(0),
            ["reads the broker, not the database"],
        )
    if program == "runserver":
        spawns = _command_spawns(repo, "runserver")
        if spawns is not None:
            # The project overrides runserver (daphne's or its own) and starts another server.
            return _own_command_shape(repo, name, "runserver", spawns)
        return Shape(
            "web",
            "django runserver (development server, a thread per request)",
            "threads",
            Quantity(1, (where,)),
            UNBOUNDED,
            ["the development server is used as a production server here"],
        )
    if program == "manage":
        command = launch.positionals[0] if launch.positionals else ""
        if command in NO_DATABASE_COMMANDS and not _may_use_database_cache(
            command, repo, settings, env
        ):
            return Shape(
                "other",
                f"manage.py {command} (runs once, no database)",
                "none",
                Quantity(1, (where,)),
                Quantity(0, (where,)),
                [
                    f"manage.py {command} works on files or the cache and opens no database connection"
                ],
            )
        if command in ONE_SHOT_COMMANDS:
            return Shape(
                "other",
                f"manage.py {command} (runs once)",
                "job",
                Quantity(1, (where,)),
                Quantity(1, (where,)),
                [
                    f"manage.py {command} runs and exits (a deploy job): one connection while it runs, counted at worst only"
                ],
            )
        if command == "qcluster":
            return django_q_cluster(name, where, settings)
        if command == "runworker":
            # Channels' worker: each ORM call runs through database_sync_to_async, which closes old
            # connections before and after, so CONN_MAX_AGE decides whether one stays open.
            return Shape(
                "worker",
                "channels runworker",
                "sync",
                Quantity(1, (where,)),
                Quantity(1, (where,)),
                [
                    "Channels' runworker: one connection, closed after each call unless CONN_MAX_AGE keeps it"
                ],
            )
        spawns = _command_spawns(repo, command)
        if spawns is None and starts_other_programs(launch) and not _command_file(repo, command):
            # `manage.py start_service all` from code not in the repository: by its name it starts
            # other programs, which may hold connections; nothing here says what they are.
            return unknown_shape(
                name,
                f"`manage.py {command}` starts other programs (by its name) from code that is not in "
                "the repository: what they run and whether they hold connections cannot be read",
                where,
                f"manage.py {command} (not modelled)",
            )
        if spawns is not None:
            return _own_command_shape(repo, name, command, spawns)
        return Shape(
            "other",
            f"manage.py {command}".strip(),
            "command",
            Quantity(1, (where,)),
            Quantity(1, (where,)),
            [
                "a long-running management command: its connection is opened outside the request cycle, so it stays "
                "open whatever CONN_MAX_AGE says (Django closes connections only at the end of a request)"
            ],
        )
    return None


def _own_command_shape(repo: RepoFiles, name: str, command: str, spawns: tuple[str, int]) -> Shape:
    """The project's own management command runs a pool of threads/processes or another program
    (a `runserver` that starts granian), each with its own connections: an unknown group."""
    found = Evidence(spawns[0], spawns[1], repo.quote(spawns[0], spawns[1]), Resolution.LITERAL)
    return unknown_shape(
        name,
        f"`manage.py {command}` is the project's own command and starts workers or another "
        f"program ({found.location()}), each with its own connections",
        found,
        f"manage.py {command} (its workers not modelled)",
    )


_POOLS = re.compile(
    r"\b(ThreadPoolExecutor|ProcessPoolExecutor|threading\.Thread|Thread\(|multiprocessing\.|Pool\(|gevent\.spawn|"
    r"eventlet\.spawn|subprocess\.|Popen\(|os\.system\(|os\.exec\w*\(|run_with_reloader\(|worker_main\(|\.Worker\()"
)
"""What makes a project's own management command more than one connection: a pool of threads or
processes, or a launcher that starts another program (`run_celery_dev`: celery under the reloader)."""


def _manage_celery_without_djcelery(
    launch: Launch, name: str, where: Evidence, repo: RepoFiles
) -> Shape | None:
    """`manage.py celery worker` was django-celery's (djcelery) command, which only works with
    Celery 3 and older. With a newer Celery and no `celery` command of the project's own, the
    line names a command the installed code does not have: what runs cannot be read, so it is
    an unknown group rather than a Celery worker or beat taken on its word."""
    if not (
        launch.program.startswith("celery")
        and launch.argv[:1]
        and launch.argv[0].rsplit("/", 1)[-1] in ("manage.py", "django-admin")
    ):
        return None
    celery = next((v for v in read_versions(repo) if v.package == "celery"), None)
    major = re.match(r"(?:==|~=|>=?)?(\d+)", celery.version) if celery else None
    if celery is None or major is None or int(major[1]) < 4 or _command_file(repo, "celery"):
        return None
    return unknown_shape(
        name,
        f"`manage.py celery` is django-celery's command (Celery 3 and older); the project has "
        f"Celery {celery.version} ({celery.evidence.location()}) and no `celery` management "
        "command of its own, so what this process runs cannot be read",
        where,
        "manage.py celery (no such command)",
    )


def _command_file(repo: RepoFiles, command: str) -> str | None:
    """The project's own management command file, if the repository holds it."""
    return next(
        (p for p in repo.named(f"{command}.py") if "/management/commands/" in f"/{p}"), None
    )


def _command_spawns(repo: RepoFiles, command: str) -> tuple[str, int] | None:
    """(file, line) where the project's own management command starts a pool of workers
    (`ThreadPoolExecutor(max_workers=concurrency)`), or None when it is not the project's or runs alone."""
    if not command or not re.fullmatch(r"[\w-]+", command):
        return None
    for path in repo.named(f"{command}.py"):
        if "/management/commands/" not in f"/{path}":
            continue
        folder = path.split("/management/commands/")[0]
        for candidate in [path] + [
            p for p in repo.paths if p.startswith(folder + "/") and p.endswith(".py") and p != path
        ][:200]:
            if candidate != path and not _imported_by(repo, path, candidate):
                continue
            for number, line in enumerate(repo.lines(candidate), start=1):
                if _POOLS.search(line) and not line.lstrip().startswith(("#", "from ", "import ")):
                    return candidate, number
    return None


def _imported_by(repo: RepoFiles, command: str, module: str) -> bool:
    """Whether the command's file imports `module` (its app's runner: `from stator.runner import StatorRunner`)."""
    dotted = module[:-3].replace("/", ".")
    tail = ".".join(dotted.split(".")[-2:])
    text = repo.text(command) or ""
    return tail in text


def django_q_cluster(name: str, where: Evidence, settings: SettingsRead | None) -> Shape:
    """django-q's `qcluster`: Q_CLUSTER["workers"] worker processes (default: the CPU count), plus
    the monitor (saves results) and the scheduler, each with its own connection; the pusher only
    reads the broker."""
    conf = settings.get("Q_CLUSTER") if settings is not None else None
    workers_v = (
        conf.value.get("workers") if conf is not None and isinstance(conf.value, dict) else None
    )
    notes = [
        "django-q: workers + the monitor + the scheduler hold connections; the pusher reads the broker"
    ]
    if isinstance(workers_v, V) and workers_v.known and isinstance(workers_v.value, int):
        processes = Quantity(workers_v.value + 2, workers_v.evidence)
    elif isinstance(workers_v, V):
        processes = Quantity(None, workers_v.evidence, f"{name}.processes")
    else:
        evidence = conf.evidence if conf is not None else (where,)
        processes = Quantity(None, evidence, f"{name}.cpus", formula="cpus + 2")
        notes.append("Q_CLUSTER sets no workers: django-q starts one per CPU")
    return Shape("worker", "django-q cluster", "prefork", processes, Quantity(1, (where,)), notes)


def rq_worker_shape(worker_class: str, where: Evidence) -> Shape:
    """rq's default Worker forks a work horse per job (its connection ends with it);
    `--worker-class rq.SimpleWorker` runs the jobs in the worker, whose connection stays open."""
    if worker_class.rsplit(".", 1)[-1] in IN_PROCESS_WORKERS:
        return Shape(
            "worker",
            "rq SimpleWorker (jobs in the worker process)",
            "command",
            Quantity(1, (where,)),
            Quantity(1, (where,)),
            ["SimpleWorker runs each job in the worker process: its connection stays open"],
        )
    return Shape(
        "worker",
        "rq worker (a work horse forked per job)",
        "fork-per-job",
        Quantity(1, (where,)),
        Quantity(1, (where,)),
        ["rq forks a work horse for each job, one at a time; it exits with its connection"],
    )


def python_program(
    launch: Launch,
    repo: RepoFiles,
    resolver: ModuleResolver,
    locate: Callable[[str], str | None],
) -> PythonProgram | None:
    """`python app.py` when app.py plainly starts gevent's WSGI server or an RQ worker."""
    argv = list(launch.argv)
    if not runs_python_file(argv):
        return None
    program = argv[1:] if argv[0] == "exec" else argv
    script = next(w for w in program[1:] if not w.startswith("-"))
    path = locate(script)
    return read_program(repo, path, resolver) if path else None


def program_shape(found: PythonProgram, repo: RepoFiles, name: str) -> Shape:
    at = Evidence(found.path, found.line, repo.quote(found.path, found.line), Resolution.LITERAL)
    if found.kind == "rq-worker":
        shape = rq_worker_shape("rq.Worker" if found.forks else "rq.SimpleWorker", at)
        if found.via:
            shape.notes.append(f"{found.via} runs it through the project's class ({found.path})")
        return shape
    if found.spawn is not None:
        per_process = Quantity(found.spawn, (at,))
    elif found.spawn_read:
        per_process = UNBOUNDED
    else:
        per_process = Quantity(None, (at,), f"{name}.per_process")
    notes = [
        "gevent's WSGIServer runs each request in its own greenlet"
        + (f", at most {found.spawn} at once" if found.spawn is not None else ", with no cap")
    ]
    if found.patched:
        notes.append("monkey.patch_all(): each greenlet has its own database connection")
    return Shape(
        "web",
        f"gevent WSGIServer ({found.path})",
        "greenlets",
        Quantity(1, (at,)),
        per_process,
        notes,
    )


def unmodelled(launch: Launch, name: str, where: Evidence) -> Shape:
    """A program of the project's own image or process list that pgslots cannot read
    (authentik's Go `server`, which starts gunicorn itself; honcho with a Procfile that is not
    in the repository): it may open connections, so its processes and their connections are
    unknowns the user sets, not a silent zero."""
    program = launch.argv[0] if launch.argv else launch.program
    why = (
        "starts the processes its configuration lists, and that configuration is not in the repository"
        if launch.program in ("supervisord", "procfile-manager")
        else "runs the project's code but is not a server pgslots models"
    )
    return unknown_shape(
        name,
        f"`{launch.text[:60]}` {why}",
        where,
        f"`{program.rsplit('/', 1)[-1]}` (not modelled)",
    )


LAMBDA_ADAPTERS = re.compile(
    r"\b(mangum|Mangum|serverless_wsgi|apig_wsgi|awsgi|get_wsgi_application|get_asgi_application)\b"
)


def aws_lambda(launch: Launch, name: str, where: Evidence, repo: RepoFiles) -> Shape:
    """An AWS Lambda function: each concurrent invocation runs in an execution environment of
    its own (a process, with its own connection), and only ReservedConcurrentExecutions caps how
    many run at once. A handler that calls Django directly (`call_command`, the ORM) opens its
    connection outside the request cycle: it stays open in the frozen environment between
    invocations, as a management command's does. Behind a WSGI/ASGI adapter (Mangum,
    serverless-wsgi, apig-wsgi) Django's request signals close it as in a sync worker."""
    handler_file = launch.option("handler_file") or ""
    text = repo.text(handler_file) or ""
    reserved = launch.option("reserved_concurrency")
    reserved_at = launch.option("reserved_at")
    events = launch.option("events") or ""
    cited = (
        Evidence(where.path, int(reserved_at), repo.quote(where.path, int(reserved_at)))
        if (reserved_at and reserved_at.isdigit())
        else where
    )
    if reserved and reserved.isdigit():
        environments = Quantity(int(reserved), (cited,))
        cap = f"ReservedConcurrentExecutions {reserved}"
    elif reserved_at:
        # A cap whose value a parameter gives at deploy time: an unknown, not unbounded.
        environments = Quantity(None, (cited,), f"{name}.processes")
        cap = "ReservedConcurrentExecutions is a deploy-time parameter: its value is not in the repository"
    else:
        environments = UNBOUNDED
        cap = "no ReservedConcurrentExecutions: concurrent invocations are unbounded"
    handler = f"{handler_file}" if handler_file else "its handler (not in the repository)"
    if "django" not in text and not LAMBDA_ADAPTERS.search(text):
        text += _imported_project_text(repo, handler_file, text)
    if "django" not in text and not LAMBDA_ADAPTERS.search(text):
        if not text:
            return unknown_shape(
                name,
                f"the Lambda handler's module is not in the repository ({launch.text})",
                where,
                "AWS Lambda function",
            )
        return Shape(
            "other",
            "AWS Lambda function (no Django)",
            "none",
            Quantity(1, (where,)),
            Quantity(0),
            [f"{handler} does not use Django: no connection to this database read"],
        )
    kind = "web" if {"Api", "HttpApi"} & set(events.split(",")) else "worker"
    adapter = LAMBDA_ADAPTERS.search(text)
    if adapter:
        return Shape(
            "web",
            f"AWS Lambda function ({adapter[1]}: one event at a time per environment)",
            "sync",
            environments,
            Quantity(1, (where,)),
            [
                f"{handler} serves requests through {adapter[1]}: one connection per environment; {cap}"
            ],
        )
    return Shape(
        kind,
        "AWS Lambda function (calls Django directly)",
        "command",
        environments,
        Quantity(1, (where,)),
        [
            f"{handler} uses Django outside the request cycle: each execution environment keeps the "
            f"connection it opened while it stays warm, whatever CONN_MAX_AGE says; {cap}"
            + (f" (events: {events})" if events else "")
        ],
    )


def _imported_project_text(repo: RepoFiles, path: str, text: str) -> str:
    """The text of the repository modules a handler imports (`from proj.wsgi import application`),
    one level deep: whether the function runs the project's Django."""
    root = path.split("/")[0] if "/" in path else ""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    found = [
        candidate
        for module in re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, re.M)
        for base in sorted({folder, root, ""})
        for candidate in (
            join(base, module.replace(".", "/") + ".py"),
            join(base, module.replace(".", "/") + "/__init__.py"),
        )
        if repo.has(candidate)
    ]
    out = [repo.text(candidate) or "" for candidate in dict.fromkeys(found)]
    return "\n".join(out)


_DATABASE_CACHE = re.compile(r"DatabaseCache|backends\.db\b|dbcache://")


def _may_use_database_cache(
    command: str, repo: RepoFiles, settings: SettingsRead | None, env: Env
) -> bool:
    """`clear_cache` empties every cache; a DatabaseCache (`django.core.cache.backends.db`, or
    django-environ's `dbcache://` URL) lives in a table, so clearing it is a database job. Unread
    settings leave it possible."""
    if command != "clear_cache":
        return False
    if settings is None:
        return True
    texts = ["\n".join(repo.lines(path)) for path in settings.evaluation.files]
    texts.extend(value.value or "" for value in env.process().values.values())
    return any(_DATABASE_CACHE.search(text) for text in texts)


def unknown_shape(
    name: str, reason: str, where: Evidence, server_model: str = "unknown (not modelled)"
) -> Shape:
    """A process group pgslots cannot model: its processes and connections per process are
    unknowns (`--assume NAME.processes=N`, `--assume NAME.per_process=N`), and until they are
    set its demand is unknown."""
    return Shape(
        "other",
        server_model,
        "unmodelled",
        Quantity(None, (where,), f"{name}.processes"),
        Quantity(None, (where,), f"{name}.per_process"),
        [f"{reason}: set {name}.processes and {name}.per_process"],
    )


def freeradius_pool(dockerfile: Dockerfile | None, repo: RepoFiles) -> RadiusPool | None:
    """The PostgreSQL pool of a FreeRADIUS image the repository builds (`FROM
    freeradius/freeradius-server`, its raddb folder copied in), or None."""
    if dockerfile is None or not any(RADIUS_IMAGES.search(b) for b in dockerfile.base_images):
        return None
    folder = config_folder(dockerfile.copies, repo)
    return read_sql_pool(repo, folder) if folder else None


def freeradius_shape(pool: RadiusPool, name: str, where: Evidence) -> Shape:
    """FreeRADIUS's own pool: `min` connections held, `max` at most (one server process)."""
    if pool.maximum is None:
        return unknown_shape(
            name, f"FreeRADIUS's sql module ({pool.module}) sets no readable pool max", where
        )
    held = pool.minimum if pool.minimum is not None else pool.maximum
    return Shape(
        "other",
        f"FreeRADIUS sql pool ({pool.module})",
        "client-pool",
        Quantity(1, (where,)),
        Quantity(pool.maximum, pool.evidence),
        [
            f"another client of the server: FreeRADIUS keeps {held} connection(s) open "
            f"(pool min) and opens up to {pool.maximum} (pool max)"
        ],
        pool_held=Quantity(held, pool.evidence),
    )


def backup_shape(where: Evidence) -> Shape:
    """pg_dump and friends: one connection while the dump runs, none between runs."""
    return Shape(
        "other",
        "backup job (pg_dump)",
        "job",
        Quantity(1, (where,)),
        Quantity(1, (where,)),
        ["a backup job: one connection while it runs"],
    )
