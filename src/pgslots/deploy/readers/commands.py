"""Start commands: gunicorn, uvicorn, daphne, hypercorn, granian, uWSGI and Celery command lines.

A command line is split into shell words, stripped of the wrappers people put in front of
the real program (`exec`, `newrelic-admin run-program`, `ddtrace-run`, `python -m`,
`poetry run`, `gosu user`, `sh -c "..."`, inline `VAR=value` ...), and its options are
read into a `Launch`. Values may still hold `$VAR` references; `expand` resolves them
against the environment the process gets, recording which variable supplied what.
"""

from __future__ import annotations

import dataclasses
import re
import shlex

from pgslots.deploy.readers.arithmetic import arithmetic_spans, evaluate_arithmetic
from pgslots.deploy.readers.envfiles import UNKNOWN_VALUE, Env, EnvValue
from pgslots.redact import redact_dsn

_SUBSHELL = re.compile(r"\$\(|`")


@dataclasses.dataclass(frozen=True)
class Expanded:
    """A word after variable expansion: `value` is None when some part cannot be known."""

    value: str | None
    used: tuple[EnvValue, ...] = ()
    missing: tuple[str, ...] = ()  # variables that were not set anywhere we can see
    defaulted: tuple[str, ...] = ()  # variables whose `${VAR:-default}` default was used


def expand(word: str, env: Env, symbolic: bool = False) -> Expanded:
    """Expand `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:?msg}`; `$(...)` makes it unknown.

    With `symbolic`, a variable set nowhere stays as `${NAME}` in the result instead of making
    it unknown: `postgres://${POSTGRES_USER}@...` still says *which* variable names the role."""
    used: list[EnvValue] = []
    if "$((" in word:
        word = _arithmetic(word, env, used)
    if _SUBSHELL.search(word):
        return Expanded(None, missing=("$(...)",))
    missing: list[str] = []
    defaulted: list[str] = []
    unknown = False

    def replace(match: dict) -> str:
        nonlocal unknown
        name = match["braced"] or match["plain"]
        op = match["op"] or ""
        found = env.get(name)
        if found is not None and found.value == UNKNOWN_VALUE:
            used.append(found)
            missing.append(name)
            if symbolic:
                return f"${{{name}}}"
            unknown = True
            return ""
        if found is not None and (found.value != "" or ":" not in op):
            used.append(found)
            return found.value if op not in (":+", "+") else (match["default"] or "")
        if op in (":-", "-", ":=", "="):
            inner = expand(match["default"] or "", env)
            if inner.value is None:
                unknown = True
                missing.extend(inner.missing)
                return ""
            used.extend(inner.used)
            defaulted.append(name)
            return inner.value
        if op in (":+", "+"):
            return ""
        missing.append(name)
        if symbolic:
            return f"${{{name}}}"
        unknown = True
        return ""

    value = _substitute(word, replace)
    return Expanded(None if unknown else value, tuple(used), tuple(missing), tuple(defaulted))


def _arithmetic(word: str, env: Env, used: list[EnvValue]) -> str:
    """Each `$(( ... ))` whose variables are known integers, replaced by its value; the others
    (`$((2 * $(nproc)))`, an unknown variable) stay, so the word stays unknown."""

    def value_of(name: str) -> str | None:
        found = env.get(name)
        if found is None:
            return "0" if env.complete else None  # bash: an unset variable is 0
        if found.value == UNKNOWN_VALUE:
            return None
        used.append(found)
        return found.value

    out, last = [], 0
    for start, end in arithmetic_spans(word):
        inner = word[start + 3 : end - 2]
        computed = None if "$(" in inner or "`" in inner else evaluate_arithmetic(inner, value_of)
        out.append(word[last:start] + (word[start:end] if computed is None else str(computed)))
        last = end
    return "".join(out) + word[last:]


_BRACED = re.compile(r"(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-=?+])?(?P<default>.*)", re.S)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute(word: str, replace) -> str:
    """Replace every `$NAME` and `${NAME<op>default}`; a default may itself hold `${...}`
    (`${GRANIAN_WORKERS:-${HTTP_WORKERS:-1}}`), so braces are matched, not regexed."""
    out: list[str] = []
    index = 0
    while index < len(word):
        char = word[index]
        if char != "$" or index + 1 >= len(word):
            out.append(char)
            index += 1
            continue
        if word[index + 1] == "{":
            depth, end = 1, index + 2
            while end < len(word) and depth:
                depth += {"{": 1, "}": -1}.get(word[end], 0)
                end += 1
            match = _BRACED.fullmatch(word[index + 2 : end - 1]) if depth == 0 else None
            if match is None:
                out.append(word[index:end])
            else:
                out.append(
                    replace(
                        {
                            "braced": match["braced"],
                            "plain": None,
                            "op": match["op"],
                            "default": match["default"],
                        }
                    )
                )
            index = end
            continue
        plain = _PLAIN.match(word, index + 1)
        if plain is None:
            out.append(char)
            index += 1
            continue
        out.append(replace({"braced": None, "plain": plain.group(0), "op": None, "default": None}))
        index = plain.end()
    return "".join(out)


def split_words(text: str) -> list[str]:
    """Shell words, with the command separators `;`, `&&`, `||`, `|`, `&` as words of their
    own even when written against a word (`sleep 1; done; uwsgi ...`); an unbalanced quote
    falls back to whitespace splitting."""
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return text.split()


# ----------------------------------------------------------------------------- wrappers

_WRAPPER_NO_ARG = {
    "exec",
    "nohup",
    "ddtrace-run",
    "opentelemetry-instrument",
    "dumb-init",
    "tini",
    "catatonit",
    "with-contenv",
    "newrelic-admin",
    "run-program",
    "scout-apm",
    "sentry-cli",
    "time",
    "command",
    "nice",
    "stdbuf",
    # Heroku buildpack wrappers that start a sidecar (pgbouncer, stunnel, nginx) and then run their arguments
    "start-pgbouncer",
    "start-pgbouncer-stunnel",
    "start-stunnel",
    "start-nginx",
    "start-nginx-solo",
}
_BUILDPACK_SIDECARS = {
    "start-nginx": "nginx",
    "start-nginx-solo": "nginx",
    "start-stunnel": "stunnel",
}
_WRAPPER_ONE_ARG = {
    "gosu",
    "su-exec",
    "setuidgid",
    "chpst",
    "timeout",
    "runuser",
    "s6-setuidgid",
    "s6-envuidgid",
}
_DOCKERIZE_SWITCHES = {"-no-overwrite", "-poll", "-version"}
_RUNNERS = {
    ("poetry", "run"),
    ("uv", "run"),
    ("pipenv", "run"),
    ("pdm", "run"),
    ("hatch", "run"),
    ("rye", "run"),
}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def unwrap(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The real program's argv, and the inline environment assignments met on the way."""
    env: dict[str, str] = {}
    words = list(argv)
    for _ in range(20):  # wrappers nest, but not endlessly
        if not words:
            break
        head = words[0].rsplit("/", 1)[-1]
        if _ASSIGNMENT.match(words[0]):
            name, _, value = words[0].partition("=")
            env[name] = value
            words = words[1:]
        elif head == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):
                if _ASSIGNMENT.match(words[0]):
                    name, _, value = words[0].partition("=")
                    env[name] = value
                words = words[1:]
        elif head in _BUILDPACK_SIDECARS and len(words) == 1:
            # `nginx: bin/start-nginx` with nothing to run: the buildpack's wrapper starts the sidecar alone.
            words = [_BUILDPACK_SIDECARS[head]]
        elif head in _WRAPPER_NO_ARG:
            words = words[1:]
            if head == "tini" and words and words[0] == "--":
                words = words[1:]
            if head == "nice" and words and words[0] == "-n":
                words = words[2:]
        elif head == "s6-notifyoncheck":
            # `s6-notifyoncheck -d -n 300 -w 1000 -c "nc -z localhost 3000" prog...`: options, then the program
            words = words[1:]
            while words and words[0].startswith("-") and words[0] != "--":
                words = words[1:] if words[0] in ("-d",) or len(words[0]) > 2 else words[2:]
        elif head == "cd" and len(words) > 2 and words[2] not in ("&&", ";", "||"):
            words = words[2:]  # execline's `cd DIR prog...` runs prog in DIR
        elif head == "fdmove" and len(words) > 3:
            words = words[1:]
            words = words[1:] if words[0] == "-c" else words
            words = words[2:]  # `fdmove -c 2 1 prog...`
        elif head == "dockerize":
            # `dockerize -wait tcp://db:5432 -timeout 120s CMD ...`: waits, then execs CMD.
            words = words[1:]
            while words and words[0].startswith("-") and words[0] != "--":
                flag = words[0]
                words = words[1:] if "=" in flag or flag in _DOCKERIZE_SWITCHES else words[2:]
            if words and words[0] == "--":
                words = words[1:]
        elif re.match(r"wait[-_]?for[-_]", head) and "--" in words[1:]:
            # `wait-for-it.sh -t 0 broker:6379 -- start.sh`, `wait-for-postgres.sh db wait-for-it.sh
            # ... -- start.sh`: they wait, then run what follows the first `--`.
            words = words[words.index("--", 1) + 1 :]
        elif head == "watchmedo" and words[1:2] == ["auto-restart"] and "--" in words:
            # `watchmedo auto-restart -p '*.py' --recursive -- celery -A app worker`: restarts the
            # command after `--` when files change; that command is the process.
            words = words[words.index("--") + 1 :]
        elif head in _WRAPPER_ONE_ARG:
            words = words[1:]
            if head == "chpst" and words and words[0] == "-u":
                words = words[1:]
            words = words[1:]
        elif (
            head in ("sh", "bash", "ash", "dash", "zsh")
            and len(words) >= 3
            and words[1] in ("-c", "-ec", "-lc", "-xc")
        ):
            inner = split_words(words[2])
            return unwrap(first_command(inner))[0], env
        elif re.fullmatch(r"python[0-9.]*", head):
            rest = words[1:]
            while rest and rest[0].startswith("-") and rest[0] != "-m":
                rest = rest[1:]
            if rest and rest[0] == "-m" and len(rest) > 1:
                words = rest[1:]
            elif rest and rest[0].endswith("manage.py"):
                words = rest
            else:
                break
        elif len(words) > 1 and (head, words[1]) in _RUNNERS:
            words = words[2:]
        elif head == "--":
            words = words[1:]
        elif "--" in words[1:] and _runs_known_program(words[words.index("--", 1) + 1 :]):
            # `sentry-wrap wrap-process --timeout=240 -- python manage.py x`: a wrapper (error
            # reporting, timeouts, retries) that runs the command after `--`: that is the process.
            words = words[words.index("--", 1) + 1 :]
        else:
            break
    return words, env


def _runs_known_program(words: list[str]) -> bool:
    return bool(words) and classify(unwrap(words)[0]) != "other"


_SHELL_KEYWORDS = frozenset(
    {"do", "done", "then", "else", "fi", "while", "until", "if", "elif", "esac", "{", "}"}
)


def first_command(words: list[str]) -> list[str]:
    """The last simple command of `a && b; exec c` (the one that becomes the process)."""
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "||", "|", "&", ";;"):
            commands.append([])
        else:
            commands[-1].append(word)
    # `while true; do sleep 10; done`: the loop's keywords are not commands
    commands = [c[1:] if c and c[0] in _SHELL_KEYWORDS else c for c in commands]
    candidates = [c for c in commands if c and c[0] not in _SHELL_KEYWORDS]
    known = [
        command
        for command in reversed(candidates)
        if unwrap(command)[0]
        and (classify(unwrap(command)[0]) != "other" or runs_python_file(unwrap(command)[0]))
    ]
    for command in known:
        # `migrate && collectstatic && python3 ./gunicorn_run.py`: the project's own
        # server script after the set-up steps is the process, not the set-up before it;
        # `migrate && collectstatic`: the step that uses the database stands for the chain.
        if not manages_without_database(parse_launch(unwrap(command)[0])):
            return command
    if known:
        return known[0]
    return candidates[-1] if candidates else []


def runs_python_file(words: list[str]) -> bool:
    """`python app.py`, `exec python3 /app/serve.py` in the foreground: a Python file of the
    project run as a program (not manage.py, which is a management command)."""
    program = words[1:] if words[0] == "exec" else words
    if (
        words[-1] == "&"
        or len(program) < 2
        or not re.fullmatch(r"python[0-9.]*", program[0].rsplit("/", 1)[-1])
    ):
        return False
    script = next((w for w in program[1:] if not w.startswith("-")), "")
    if script in ("$1", "${1}"):
        return program[1] not in ("-c", "-m")  # `python $1`: the file the script is given
    return (
        script.endswith(".py")
        and script.rsplit("/", 1)[-1] != "manage.py"
        and program[1] not in ("-c", "-m")
    )


# ----------------------------------------------------------------------------- programs

ONE_SHOT_COMMANDS = frozenset(
    {
        "migrate",
        "makemigrations",
        "collectstatic",
        "compilemessages",
        "createcachetable",
        "check",
        "loaddata",
        "dumpdata",
        "createsuperuser",
        "showmigrations",
        "compress",
        "clearsessions",
        "flush",
        "sendtestemail",
        "test",
        "wait_for_db",
        "migrate_schemas",
        "update_index",
        "rebuild_index",
        "makemessages",
        "clear_cache",
    }
)
"""Django's (and common third-party) management commands that do their work and exit."""

NO_DATABASE_COMMANDS = frozenset(
    {"collectstatic", "compilemessages", "makemessages", "clear_cache"}
)
"""One-shot management commands that work on files or the cache and open no database connection:
Django runs their system checks without the database checks (`databases=None`). `clear_cache`
(django-extensions) does only while no cache is a DatabaseCache (see servers.shape_of)."""

PROCFILE_MANAGERS = frozenset({"honcho", "foreman", "overmind", "hivemind"})
"""Programs that start every process type of a Procfile (`honcho -f Procfile.docker start`)."""

NO_DATABASE_PROGRAMS = frozenset(
    {
        "nginx",
        "openresty",
        "caddy",
        "traefik",
        "haproxy",
        "envoy",
        "apache2",
        "httpd",
        "redis-server",
        "memcached",
        "rabbitmq-server",
        "tail",
        "sleep",
        "logrotate",
        "stunnel",
        "node",
        "npm",
        "yarn",
        # proxies that only forward the application's own connections (counting them would count those twice)
        "cloud_sql_proxy",
        "cloud-sql-proxy",
        "amazon-cloudwatch-agent",
        "amazon-cloudwatch-agent-ctl",
        "node_exporter",
        "fluent-bit",
        "filebeat",
        "vector",
    }
)
"""Programs a process manager runs beside the application that never connect to the database."""


def holds_no_database(argv: list[str] | tuple[str, ...]) -> bool:
    return bool(argv) and argv[0].rsplit("/", 1)[-1] in NO_DATABASE_PROGRAMS


def manages_without_database(launch: Launch) -> bool:
    """`manage.py collectstatic`, `manage.py clear_cache -a`: a step that leaves the database alone,
    so a chain or script of set-up steps is represented by another step (`migrate`)."""
    return (
        launch.program == "manage"
        and bool(launch.positionals)
        and launch.positionals[0] in NO_DATABASE_COMMANDS
    )


_VALUE_OPTIONS: dict[str, dict[str, str]] = {
    "gunicorn": {
        "-w": "workers",
        "--workers": "workers",
        "--threads": "threads",
        "-k": "worker_class",
        "--worker-class": "worker_class",
        "--worker-connections": "worker_connections",
        "-c": "config",
        "--config": "config",
        "-b": "bind",
        "--bind": "bind",
        "-e": "env",
        "--env": "env",
        "-t": "timeout",
        "--timeout": "timeout",
        "--chdir": "chdir",
        "--max-requests": "max_requests",
        "--max-requests-jitter": "max_requests_jitter",
        "--graceful-timeout": "graceful_timeout",
        "--keep-alive": "keepalive",
        "--log-level": "loglevel",
        "--access-logfile": "accesslog",
        "--error-logfile": "errorlog",
        "--log-file": "errorlog",
        "--access-logformat": "access_log_format",
        "-n": "proc_name",
        "--name": "proc_name",
        "--pythonpath": "pythonpath",
        "-u": "user",
        "--user": "user",
        "-g": "group",
        "--group": "group",
        "-p": "pidfile",
        "--pid": "pidfile",
        "--backlog": "backlog",
        "--forwarded-allow-ips": "forwarded_allow_ips",
        "--worker-tmp-dir": "worker_tmp_dir",
        "--certfile": "certfile",
        "--keyfile": "keyfile",
        "--statsd-host": "statsd_host",
        "--statsd-prefix": "statsd_prefix",
        "--log-config": "logconfig",
        "--umask": "umask",
        "--limit-request-line": "limit_request_line",
        "--limit-request-fields": "limit_request_fields",
        "--limit-request-field_size": "limit_request_field_size",
        "--paste": "paste",
    },
    "uvicorn": {
        "--host": "host",
        "--port": "port",
        "--uds": "uds",
        "--fd": "fd",
        "--workers": "workers",
        "--loop": "loop",
        "--http": "http",
        "--ws": "ws",
        "--lifespan": "lifespan",
        "--interface": "interface",
        "--env-file": "env_file",
        "--log-config": "log_config",
        "--log-level": "log_level",
        "--root-path": "root_path",
        "--limit-concurrency": "limit_concurrency",
        "--backlog": "backlog",
        "--limit-max-requests": "limit_max_requests",
        "--timeout-keep-alive": "timeout_keep_alive",
        "--timeout-graceful-shutdown": "timeout_graceful_shutdown",
        "--forwarded-allow-ips": "forwarded_allow_ips",
        "--app-dir": "app_dir",
        "--header": "header",
        "--ssl-keyfile": "ssl_keyfile",
        "--ssl-certfile": "ssl_certfile",
    },
    "daphne": {
        "-b": "bind",
        "--bind": "bind",
        "-p": "port",
        "--port": "port",
        "-u": "unix_socket",
        "--unix-socket": "unix_socket",
        "--fd": "fd",
        "-e": "endpoint",
        "--endpoint": "endpoint",
        "--access-log": "access_log",
        "--application-close-timeout": "application_close_timeout",
        "--websocket_timeout": "websocket_timeout",
        "-v": "verbosity",
        "--verbosity": "verbosity",
        "--root-path": "root_path",
        "--proxy-headers-host": "proxy_headers_host",
    },
    "hypercorn": {
        "-w": "workers",
        "--workers": "workers",
        "-k": "worker_class",
        "--worker-class": "worker_class",
        "-b": "bind",
        "--bind": "bind",
        "-c": "config",
        "--config": "config",
        "--keep-alive": "keep_alive",
        "--log-level": "log_level",
        "--access-logfile": "access_log",
        "--error-logfile": "error_log",
        "--root-path": "root_path",
        "--backlog": "backlog",
        "--max-requests": "max_requests",
    },
    "granian": {
        "--interface": "interface",
        "--workers": "workers",
        "--blocking-threads": "blocking_threads",
        "--backpressure": "backpressure",
        "--threads": "threads",
        "--runtime-threads": "runtime_threads",
        "--host": "host",
        "--port": "port",
        "--loop": "loop",
        "--http": "http",
        "--backlog": "backlog",
        "--log-level": "log_level",
        "--workers-lifetime": "workers_lifetime",
    },
    "celery": {
        "-A": "app",
        "--app": "app",
        "-b": "broker",
        "--broker": "broker",
        "--result-backend": "result_backend",
        "--loader": "loader",
        "--config": "config",
        "--workdir": "workdir",
        "-c": "concurrency",
        "--concurrency": "concurrency",
        "-P": "pool",
        "--pool": "pool",
        "--autoscale": "autoscale",
        "-Q": "queues",
        "--queues": "queues",
        "-l": "loglevel",
        "--loglevel": "loglevel",
        "-n": "hostname",
        "--hostname": "hostname",
        "--max-tasks-per-child": "max_tasks_per_child",
        "--max-memory-per-child": "max_memory_per_child",
        "-O": "optimization",
        "--prefetch-multiplier": "prefetch_multiplier",
        "-s": "schedule",
        "--schedule": "schedule",
        "-S": "scheduler",
        "--scheduler": "scheduler",
        "--pidfile": "pidfile",
        "-f": "logfile",
        "--logfile": "logfile",
        "--time-limit": "time_limit",
        "--soft-time-limit": "soft_time_limit",
        "-X": "exclude_queues",
        "--exclude-queues": "exclude_queues",
        "--max-interval": "max_interval",
        "--uid": "uid",
        "--gid": "gid",
        "--basic_auth": "basic_auth",
        "--port": "port",
        "--address": "address",
        "--url_prefix": "url_prefix",
        "--statedb": "statedb",
    },
    "rq": {"-w": "worker_class", "--worker-class": "worker_class", "-u": "url", "--url": "url"},
    "manage": {"--worker-class": "worker_class"},  # django-rq's `rqworker --worker-class X`
    "uwsgi": {
        "-p": "processes",
        "--processes": "processes",
        "--workers": "processes",
        "--threads": "threads",
        "--gevent": "gevent",
        "--async": "async",
        "--ini": "ini",
        "--module": "module",
        "-w": "module",
        "--wsgi-file": "wsgi_file",
        "--http": "http",
        "--socket": "socket",
        "-s": "socket",
        "--http-socket": "http_socket",
        "--harakiri": "harakiri",
        "--max-requests": "max_requests",
        "--chdir": "chdir",
        "--env": "env",
        "--uid": "uid",
        "--gid": "gid",
        "--buffer-size": "buffer_size",
        "--cheaper": "cheaper",
        "--listen": "listen",
        "--static-map": "static_map",
    },
}


@dataclasses.dataclass(frozen=True)
class Launch:
    """A parsed start command."""

    program: str  # gunicorn, uvicorn, daphne, hypercorn, granian, uwsgi, celery-worker,
    # celery-beat, celery-flower, celery-other, runserver, manage, supervisord, procfile-manager,
    # rq-worker, aws-lambda, other, nothing (a start script whose branch for this environment
    # runs none of its programs)
    argv: tuple[str, ...]
    options: dict[str, str]  # canonical option name -> raw value ("" for a flag)
    positionals: tuple[str, ...]
    inline_env: dict[str, str]
    text: str  # the command as shown to the user, secrets masked
    # `bin/start-pgbouncer gunicorn ...` (Heroku's pgbouncer buildpack): the wrapper that starts a
    # pgbouncer on the same host and points DATABASE_URL at it before running the program
    pgbouncer_wrapper: str = ""

    def option(self, name: str) -> str | None:
        return self.options.get(name)


def nothing_runs(why: str) -> Launch:
    """The start of a container whose script, in this environment, runs none of its programs
    (`elif [ "$MODULE_NAME" = 'postfix' ]` runs postfix and rsyslogd): no database client."""
    return Launch("nothing", (), {}, (), {}, why[:300])


LAMBDA_PROGRAM = "aws-lambda"
"""The program of a Lambda function's process definition: `aws-lambda --handler-file=F HANDLER`
(a function has no command line; its handler is what runs)."""


def classify(argv: list[str]) -> str:
    if not argv:
        return "other"
    head = argv[0].rsplit("/", 1)[-1]
    if head.endswith(".py") and head != "manage.py":
        return "other"
    if head in ("gunicorn", "uvicorn", "daphne", "hypercorn", "granian", "uwsgi"):
        return head
    if head == "rq" and next((w for w in argv[1:] if not w.startswith("-")), "") == "worker":
        return "rq-worker"  # rq's CLI: `rq worker high default`
    if head == LAMBDA_PROGRAM:
        return LAMBDA_PROGRAM  # an AWS Lambda function (readers/serverless.py writes this line)
    if head == "supervisord":
        return "supervisord"  # a process manager: its programs are read from its config
    if head in PROCFILE_MANAGERS and "start" in argv[1:]:
        return "procfile-manager"  # honcho/foreman: the process types of a Procfile
    if head == "celery":
        sub = _celery_subcommand(argv[1:])
        return f"celery-{sub}" if sub in ("worker", "beat", "flower") else "celery-other"
    if head == "manage.py" or (head == "django-admin"):
        rest = [w for w in argv[1:] if not w.startswith("-")]
        if rest and rest[0] in ("runserver", "runserver_plus"):
            return "runserver"
        if rest and rest[0] == "celery" and len(rest) > 1:
            return f"celery-{rest[1]}" if rest[1] in ("worker", "beat") else "celery-other"
        return "manage"
    return "other"


_CELERY_GLOBAL_VALUE_OPTIONS = {
    "-A",
    "--app",
    "-b",
    "--broker",
    "--result-backend",
    "--loader",
    "--config",
    "--workdir",
}


def _celery_subcommand(words: list[str]) -> str | None:
    """`worker` in `celery -A proj worker -c 4` (global options may come first)."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _CELERY_GLOBAL_VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def parse_launch(argv: list[str]) -> Launch:
    """Read the options of a command line (after `unwrap`)."""
    program = classify(argv)
    family = program.split("-")[0] if program.startswith(("celery", "rq-")) else program
    table = _VALUE_OPTIONS.get(family, {})
    options: dict[str, str] = {}
    positionals: list[str] = []
    words = argv[1:]
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            options[table.get(name) or name.lstrip("-").replace("-", "_")] = value
        elif word.startswith("-") and word != "-":
            canonical = table.get(word)
            if canonical is not None and index < len(words):
                options[canonical] = words[index]
                index += 1
            elif len(word) > 2 and not word.startswith("--") and table.get(word[:2]):
                options[table[word[:2]]] = word[2:]  # -w4, -c16
            elif family == "uwsgi" and index < len(words) and not words[index].startswith("-"):
                options[word.lstrip("-").replace("-", "_")] = words[index]
                index += 1
            else:
                options[word.lstrip("-").replace("-", "_")] = ""
        else:
            positionals.append(word)
    if program.startswith("celery") and "B" in options:
        options["beat"] = ""
    text = redact_dsn(" ".join(shlex.quote(w) if " " in w else w for w in argv))
    return Launch(program, tuple(argv), options, tuple(positionals), {}, text[:300])


PGBOUNCER_WRAPPERS = frozenset({"start-pgbouncer", "start-pgbouncer-stunnel"})
"""Heroku's pgbouncer buildpack: `bin/start-pgbouncer CMD` runs a pgbouncer on the dyno, rewrites
DATABASE_URL to it, then runs CMD (its pool size comes from PGBOUNCER_* config vars)."""


def launch_from_words(words: list[str]) -> Launch:
    command = first_command(words)
    program_words, inline = unwrap(command)
    launch = parse_launch(program_words)
    wrapper = next(
        (
            word
            for word in command[: max(0, len(command) - len(program_words))]
            if word.rsplit("/", 1)[-1] in PGBOUNCER_WRAPPERS
        ),
        "",
    )
    return dataclasses.replace(launch, inline_env=inline, pgbouncer_wrapper=wrapper)


def launch_from_text(text: str) -> Launch:
    return launch_from_words(split_words(text))
