"""The audit's readers on the shapes real repositories use, one small tree per case."""

from __future__ import annotations

from pathlib import Path

from pgslots.audit import run_audit
from pgslots.deploy.readers.commands import expand, launch_from_text
from pgslots.deploy.readers.envfiles import Env, EnvValue
from pgslots.evidence import Evidence


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def groups(root: Path) -> dict:
    diagnosis = run_audit(root)
    return {g.name: g for g in diagnosis.topology.groups}


def test_wrappers_and_shell_forms_reach_the_real_server() -> None:
    cases = {
        "exec newrelic-admin run-program /usr/local/bin/gunicorn config.asgi -k uvicorn_worker.UvicornWorker": (
            "gunicorn",
            "worker_class",
        ),
        "sh -c 'python manage.py migrate && exec gunicorn proj.wsgi -w 4'": ("gunicorn", "workers"),
        "poetry run celery -A proj worker --concurrency=${CELERY_CONCURRENCY:-4} -P gevent": (
            "celery-worker",
            "concurrency",
        ),
        "ddtrace-run python -m uvicorn proj.asgi:application --workers 2 --limit-concurrency 30": (
            "uvicorn",
            "limit_concurrency",
        ),
        "gosu app uwsgi --ini uwsgi.ini --processes 4 --threads 2": ("uwsgi", "threads"),
        # s6-overlay run scripts (execline): s6-notifyoncheck options, `cd DIR prog`, s6-setuidgid USER
        'exec s6-notifyoncheck -d -n 300 -w 1000 -c "nc -z localhost 3000" cd /app s6-setuidgid abc gunicorn a.wsgi --threads=4': (
            "gunicorn",
            "threads",
        ),
    }
    for text, (program, option) in cases.items():
        launch = launch_from_text(text)
        assert launch.program == program, text
        assert option in launch.options, text


def test_expansion_defaults_and_symbolic_urls() -> None:
    env = Env({"A": EnvValue("A", "7", Evidence("x.env", 1, "A=7"))})
    assert expand("${A:-3}", env).value == "7"
    assert expand("${B:-3}", env).value == "3"
    assert expand("$B", env).value is None
    assert expand("$(nproc)", env).value is None
    assert expand("postgres://${U}@h/d", env, symbolic=True).value == "postgres://${U}@h/d"


def test_gunicorn_conf_threads_and_cmd_args_precedence(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 0}}\n",
            "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "gunicorn.conf.py": "import multiprocessing\nworkers = multiprocessing.cpu_count() * 2 + 1\nthreads = 4\n",
            "Procfile": "web: GUNICORN_CMD_ARGS='--workers 3' gunicorn proj.wsgi\n",
        },
    )
    web = groups(root)["web"]
    assert web.concurrency_model == "threads" and web.per_process.value == 4
    assert web.processes.value == 3  # GUNICORN_CMD_ARGS beats the config file
    assert web.demand.worst == 12


def test_custom_uvicorn_worker_with_a_limit_is_bounded(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "proj/asgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "proj/workers.py": "from uvicorn_worker import UvicornWorker\n\n\nclass Limited(UvicornWorker):\n"
            "    CONFIG_KWARGS = {'loop': 'auto', 'http': 'auto', 'limit_concurrency': 25}\n",
            "Procfile": "web: gunicorn proj.asgi -w 2 -k proj.workers.Limited\n",
            "requirements.txt": "Django==5.2.1\n",
        },
    )
    web = groups(root)["web"]
    assert web.concurrency_model == "asgi" and web.per_process.value == 25
    assert web.demand.worst == 50
    assert any(e.path == "proj/workers.py" for e in web.per_process.evidence)


def test_pool_with_persistent_connections_and_old_django_are_errors(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 60,\n"
            "    'OPTIONS': {'pool': {'min_size': 2, 'max_size': 6}}}}\n",
            "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "Procfile": "web: gunicorn proj.wsgi -w 3\n",
            "requirements.txt": "Django==5.0.6\npsycopg2-binary==2.9.9\n",
        },
    )
    diagnosis = run_audit(root)
    codes = {f.code for f in diagnosis.findings}
    assert {"PGS004", "PGS016", "PGS017"} <= codes
    web = diagnosis.topology.groups[0]
    assert (web.demand.steady, web.demand.worst) == (6, 18)
    assert [r.code for r in diagnosis.remedies] == ["R12"]


def test_official_image_superuser_through_an_uncommitted_env_file(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "config/__init__.py": "",
            "config/settings/__init__.py": "",
            "config/settings/production.py": "import environ\nenv = environ.Env()\nDATABASES = {'default': env.db('DATABASE_URL')}\n",
            "config/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.production')\n",
            "docker-compose.production.yml": "services:\n  django:\n    build: .\n    env_file: [./.envs/.production/.postgres]\n"
            "    command: /start\n  postgres:\n    image: postgres:17\n    env_file: [./.envs/.production/.postgres]\n"
            "    command: postgres -c max_connections=50\n",
            "Dockerfile": 'FROM python:3.12\nCOPY ./start /start\nCOPY ./entrypoint /entrypoint\nENTRYPOINT ["/entrypoint"]\n',
            "entrypoint": '#!/bin/sh\nexport DATABASE_URL="postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/${POSTGRES_DB}"\nexec "$@"\n',
            "start": "#!/bin/sh\nexec gunicorn config.wsgi --workers 5\n",
        },
    )
    diagnosis = run_audit(root)
    slots = diagnosis.topology.slots
    assert slots.role_is_superuser is True and slots.usable == 50
    assert "PGS015" in {f.code for f in diagnosis.findings}
    assert diagnosis.topology.groups[0].demand.worst == 5


def test_second_alias_on_another_server_is_not_counted(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": "import os\nimport dj_database_url\n"
            "DATABASES = {'default': dj_database_url.config(conn_max_age=600, conn_health_checks=True),\n"
            "             'analytics': dj_database_url.parse(os.environ['ANALYTICS_URL'])}\n",
            ".env": "DJANGO_SETTINGS_MODULE=app.settings\nDATABASE_URL=postgres://u:secret-pw-1@db1:5432/app\n"
            "ANALYTICS_URL=postgres://u:secret-pw-2@db2:5432/warehouse\n",
            "Procfile": "web: gunicorn app.wsgi --workers 2 --threads 4\nworker: celery -A app worker --autoscale=10,2\n",
            "requirements.txt": "celery==5.3.6\n",
        },
    )
    found = groups(root)
    assert found["web"].aliases == ("default",)
    assert (found["web"].demand.steady, found["web"].demand.worst) == (8, 8)
    assert (found["worker"].demand.steady, found["worker"].demand.worst) == (10, 10)


def test_mounted_postgresql_conf_and_pgbouncer_ini_are_read(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "import os\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'HOST': 'bouncer',\n"
            "    'PORT': '6432', 'USER': 'app', 'NAME': 'app', 'DISABLE_SERVER_SIDE_CURSORS': True}}\n",
            "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "deploy/postgresql.conf": "# tuned\nmax_connections = 250\n#superuser_reserved_connections = 3\nreserved_connections = 5\n",
            "deploy/pgbouncer.ini": "[databases]\napp = host=db dbname=app\n\n[pgbouncer]\npool_mode = transaction\n"
            "default_pool_size = 40\nreserve_pool_size = 5\nmax_client_conn = 1000\n",
            "docker-compose.prod.yml": "services:\n  web:\n    build: .\n    command: gunicorn proj.wsgi -w 4 --threads 10\n"
            "  bouncer:\n    image: bitnami/pgbouncer:1.23\n    volumes:\n      - ./deploy/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro\n"
            "  db:\n    image: postgres:16\n    command: postgres -c config_file=/etc/postgresql/postgresql.conf\n"
            "    volumes:\n      - ./deploy/postgresql.conf:/etc/postgresql/postgresql.conf\n",
        },
    )
    diagnosis = run_audit(root)
    t = diagnosis.topology
    assert t.slots.max_connections.value == 250 and t.slots.reserved_connections.value == 5
    assert t.slots.usable == 250 - 3 - 5
    assert (
        t.pgbouncer is not None
        and t.pgbouncer.pool_mode == "transaction"
        and t.pgbouncer.capacity == 45
    )
    web = t.groups[0]
    assert web.policy.via_pgbouncer and web.demand.worst == 40
    assert t.demand.worst == 40  # min(pools 45, clients 40)
    assert not t.unused_configs
    assert "PGS011" not in {f.code for f in diagnosis.findings}


# ----------------------------------------------------------------------------- shapes met in real repositories


def evaluate(
    tmp_path: Path, source: str, env: dict[str, str] | None = None, complete: bool = True
) -> dict:
    """The namespace a settings module leaves, read statically against an environment."""
    from pgslots.deploy.readers import RepoFiles
    from pgslots.deploy.readers.pyeval import Evaluator

    root = write(tmp_path, {"proj/__init__.py": "", "proj/settings.py": source})
    values = {k: EnvValue(k, v, Evidence("x.env", 1, f"{k}={v}")) for k, v in (env or {}).items()}
    evaluation = Evaluator(RepoFiles.scan(root), Env(values, complete=complete)).run(
        "proj/settings.py"
    )
    return {k: v.plain() for k, v in evaluation.namespace.items()}


def test_the_projects_own_helper_functions_are_evaluated(tmp_path: Path) -> None:
    # A private `__int_or` helper, an `int_setting` that maps "None" to None, a builder function
    # returning DATABASES, a `match`, and what stays unknown: a loop, a raise.
    ns = evaluate(
        tmp_path,
        """
import os

def __int_or(name, fallback):
    return int(os.environ.get(name, fallback))

def int_setting(name, fallback):
    raw = os.environ.get(name, fallback)
    if raw == "None":
        return None
    return int(raw)

def _databases():
    found = {"default": {"ENGINE": "django.db.backends.sqlite3"}}
    if os.environ.get("STORE_HOST"):
        found["scratch"] = found["default"].copy()
        found["default"] = {"HOST": os.environ.get("STORE_HOST"), "OPTIONS": {}}
        match os.environ.get("STORE_KIND", "pg"):
            case "mysql":
                backend = "django.db.backends.mysql"
            case _:
                backend = "django.db.backends.postgresql"
        found["default"]["ENGINE"] = backend
    return found

def looping():
    for x in [1]:
        return x

def strict(v):
    if v not in ("True", "False"):
        raise ValueError(v)
    return v == "True"

WORKERS = __int_or("JOB_WORKERS", 2)
PERSIST = int_setting("DB_PERSIST", "0")
NO_LIMIT = int_setting("UPLOAD_LIMIT", "None")
DATABASES = _databases()
LOOPED = looping()
BAD = strict("maybe")
if host := os.environ.get("STORE_HOST"):
    WALRUS = host
""",
        {"JOB_WORKERS": "5", "STORE_HOST": "pg.internal"},
    )
    assert ns["WORKERS"] == 5 and ns["PERSIST"] == 0 and ns["NO_LIMIT"] is None
    assert ns["DATABASES"]["default"] == {
        "HOST": "pg.internal",
        "OPTIONS": {},
        "ENGINE": "django.db.backends.postgresql",
    }
    assert ns["DATABASES"]["scratch"]["ENGINE"] == "django.db.backends.sqlite3"
    assert repr(ns["LOOPED"]) == "UNKNOWN" and repr(ns["BAD"]) == "UNKNOWN"
    assert ns["WALRUS"] == "pg.internal"


def test_unset_variables_are_none_only_in_a_complete_environment(tmp_path: Path) -> None:
    source = 'import os\nA = os.getenv("UNSET")\nB = "UNSET" in os.environ\nC = bool(os.environ.get("URL"))\n'
    complete = evaluate(tmp_path / "a", source, {"URL": "postgres://h/d"})
    assert (
        complete["A"] is None and complete["B"] is False and complete["C"] is True
    )  # bool(str) is truthiness
    partial = evaluate(tmp_path / "b", source, complete=False)
    assert repr(partial["A"]) == "UNKNOWN" and repr(partial["B"]) == "UNKNOWN"


def test_django_split_settings_include_reads_its_components(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings/__init__.py": "from split_settings.tools import include, optional\n"
            "include('components/*.py', optional('local_settings.py'))\n",
            "proj/settings/components/base.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 30}}\n",
            "proj/settings/components/workers.py": "CELERY_WORKER_CONCURRENCY = 3\n",
            "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "Procfile": "web: gunicorn proj.wsgi\nworker: celery -A proj worker\n",
        },
    )
    found = groups(root)
    assert found["web"].policy.conn_max_age == 30
    assert found["worker"].processes.value == 3


def test_shell_separators_interpreters_and_background_processes(tmp_path: Path) -> None:
    # Wait loops before the server: `bash -c 'until ...; do sleep 2; done; uwsgi ...'` (`;` against
    # a word), the bash `!</dev/tcp/HOST/PORT` probe; cookiecutter-django:
    # `["/bin/bash", "/app/.../start"]`; a start script that sends a gevent Celery worker to the
    # background before running gunicorn in the foreground.
    for text in (
        "bash -c 'until pg_isready -q -h pg; do echo waiting; sleep 2; done; uwsgi /srv/web.ini'",
        "sh -c 'while !</dev/tcp/pg/6432; do sleep 3; done; uwsgi --ini /etc/site.ini'",
    ):
        assert launch_from_text(text).program == "uwsgi", text
    root = write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "start.sh": "#!/bin/bash\npython manage.py migrate\n"
            "celery -A app worker -l info --pool=gevent --concurrency=500 &\n"
            "gunicorn --bind 0.0.0.0:8000 app.wsgi --workers 2\n",
            "Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY . /app/\nCMD ["/bin/bash", "/app/start.sh"]\n',
        },
    )
    found = groups(root)
    assert found["web"].server_model == "gunicorn sync" and found["web"].demand.worst == 2
    assert (
        found["web/celery-worker"].concurrency_model == "celery-green"
        and found["web/celery-worker"].demand.worst == 500
    )


def test_uwsgi_if_env_blocks_follow_the_environment(tmp_path: Path) -> None:
    import shutil

    # The same tree with the `if-env` variable set and one thread per worker: the third
    # attach-daemon runs, and uWSGI with threads = 1 is a sync server.
    repo = tmp_path / "tracker"
    shutil.copytree(Path(__file__).parent / "fixtures" / "repos" / "uwsgi_compose_ini", repo)
    env_file = repo / "ops" / "app.env"
    env_file.write_text(
        env_file.read_text().replace("WEB_THREADS=2\n", "WEB_THREADS=1\n")
        + "INBOUND_MAIL_PORT=2525\n"
    )
    found = groups(repo)
    assert set(found) == {"app", "app/send_reminders", "app/sync_calendars", "app/receive_mail"}
    assert found["app"].concurrency_model == "sync" and found["app"].demand.worst == 3
    assert found["app/receive_mail"].demand.worst == 1


def test_embedded_beat_uses_the_apps_scheduler_and_s6_services_are_processes(
    tmp_path: Path,
) -> None:
    # An s6-overlay image: ENTRYPOINT /init, one `run` per longrun service, a oneshot `up`;
    # granian reads GRANIAN_WORKERS, which the run script exports from the project's own
    # variable (a nested default); the jobs service runs a Celery worker with an embedded beat.
    root = write(
        tmp_path,
        {
            "backend/acme/__init__.py": "",
            "backend/acme/settings.py": "import os\nDATABASES = {'default': {'ENGINE': "
            "'django.db.backends.postgresql', 'HOST': os.environ.get('ACME_PG_HOST')}}\n"
            "CELERY_WORKER_CONCURRENCY = 3\n",
            "backend/manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'acme.settings')\n",
            "Dockerfile": 'FROM python:3.13-slim\nCOPY image/root /\nCOPY backend /srv/backend\nENTRYPOINT ["/init"]\n',
            "image/root/etc/s6-overlay/s6-rc.d/svc-http/type": "longrun\n",
            "image/root/etc/s6-overlay/s6-rc.d/svc-http/run": "#!/command/with-contenv bash\n"
            "cd /srv/backend\n"
            "export GRANIAN_WORKERS=${GRANIAN_WORKERS:-${ACME_HTTP_WORKERS:-1}}\n"
            "exec granian --interface asginl --host 0.0.0.0 acme.asgi:application\n",
            "image/root/etc/s6-overlay/s6-rc.d/svc-jobs/type": "longrun\n",
            "image/root/etc/s6-overlay/s6-rc.d/svc-jobs/run": "#!/command/with-contenv bash\n"
            "cd /srv/backend\nexec celery -A acme worker --beat -l warning\n",
            "image/root/etc/s6-overlay/s6-rc.d/init-schema/type": "oneshot\n",
            "image/root/etc/s6-overlay/s6-rc.d/init-schema/up": "/etc/s6-overlay/s6-rc.d/init-schema/run\n",
            "image/root/etc/s6-overlay/s6-rc.d/init-schema/run": "exec python3 /srv/backend/manage.py migrate\n",
            "compose.yaml": "services:\n  pg:\n    image: postgres:17\n  acme:\n    build: .\n"
            "    environment:\n      ACME_PG_HOST: pg\n      ACME_HTTP_WORKERS: 4\n",
        },
    )
    found = groups(root)
    assert set(found) == {"acme/http", "acme/jobs", "acme/jobs-beat"}
    assert (
        found["acme/http"].server_model == "asgi (granian asginl)"
        and found["acme/http"].processes.value == 4
    )
    assert found["acme/jobs"].processes.value == 3
    assert found["acme/jobs-beat"].concurrency_model == "none"  # the default file scheduler


def test_a_supervisord_program_script_runs_the_branch_its_environment_selects(
    tmp_path: Path,
) -> None:
    import shutil

    # supervisord_image's flower program is a script that starts flower only when
    # CATALOG_FLOWER=1: off in the fixture (no program), on here (celery flower, the broker only).
    repo = tmp_path / "catalog"
    shutil.copytree(Path(__file__).parent / "fixtures" / "repos" / "supervisord_image", repo)
    off = groups(repo)["app/flower"]
    assert off.server_model.startswith("no program") and off.demand.worst == 0
    env_file = repo / "deploy" / "catalog.env"
    env_file.write_text(env_file.read_text().replace("#CATALOG_FLOWER=1", "CATALOG_FLOWER=1"))
    on = groups(repo)["app/flower"]
    assert on.server_model == "celery flower" and on.demand.worst == 0
    assert ("deploy/maybe-flower.sh", 4) in {(e.path, e.line) for e in on.evidence}


def test_a_password_equal_to_the_projects_names_does_not_mask_the_report() -> None:
    from typer.testing import CliRunner

    import pgslots.cli.audit  # noqa: F401 - registers the command
    from pgslots.cli import app

    # deploy/compose.postgres.yml sets POSTGRES_PASSWORD: catalog in a repository whose
    # package, database and role are all called catalog.
    repo = Path(__file__).parent / "fixtures" / "repos" / "supervisord_image"
    result = CliRunner().invoke(app, ["audit", str(repo), "--fail-on", "never"])
    assert "Settings: catalog.settings" in result.stdout
    assert "application role: catalog" in result.stdout and "app/web" in result.stdout
    assert "POSTGRES_PASSWORD: catalog" not in result.stdout


def test_an_entry_script_dispatching_on_its_argument_runs_the_branch_for_the_command(
    tmp_path: Path,
) -> None:
    # authentik's `lifecycle/ak`: one image, `command: server` / `command: worker`, the script picks
    # the branch on "$1" and hands the real command line to a helper function as a string.
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "proj/celery.py": "from celery import Celery\napp = Celery('proj')\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "lifecycle/ak": "#!/bin/bash -e\n"
            "function check_if_root {\n    exec $1\n}\n"
            'if [[ "$1" == "server" ]]; then\n'
            "    exec gunicorn proj.wsgi --workers 3\n"
            'elif [[ "$1" == "worker" ]]; then\n'
            '    check_if_root "celery -A proj.celery worker --autoscale 3,1 -B -s /tmp/celerybeat-schedule"\n'
            'else\n    exec python -m manage "$@"\nfi\n',
            "Dockerfile": "FROM python:3.12-slim\nLABEL org.opencontainers.image.source=https://github.com/acme/proj\n"
            'COPY . /\nENTRYPOINT ["/lifecycle/ak"]\n',
            "docker-compose.yml": "services:\n  postgresql:\n    image: postgres:16\n"
            "  server:\n    image: ghcr.io/acme/proj:1\n    command: server\n"
            "  worker:\n    image: ghcr.io/acme/proj:1\n    command: worker\n",
        },
    )
    found = groups(root)
    assert found["server"].server_model == "gunicorn sync" and found["server"].demand.worst == 3
    assert found["worker"].concurrency_model == "prefork" and found["worker"].demand.worst == 3
    assert found["worker-beat"].concurrency_model == "none"


def test_case_dispatch_tags_each_launch_with_its_pattern(tmp_path: Path) -> None:
    from pgslots.deploy.readers import RepoFiles
    from pgslots.deploy.readers.scripts import read_script

    write(
        tmp_path,
        {
            "entrypoint.sh": '#!/bin/sh\ncase "$1" in\n  web|server)\n    exec gunicorn app.wsgi\n    ;;\n'
            '  worker) exec celery -A app worker ;;\n  *)\n    exec "$@"\n    ;;\nesac\n'
        },
    )
    script = read_script(RepoFiles.scan(tmp_path), "entrypoint.sh")
    assert script is not None
    assert [(item.launch.program, item.guard) for item in script.launches] == [
        ("gunicorn", ("web", "server")),
        ("celery-worker", ("worker",)),
    ]


def test_an_unmodelled_program_of_the_projects_image_is_an_unknown_not_a_zero(
    tmp_path: Path,
) -> None:
    # authentik's `server` runs a Go binary that starts gunicorn itself: nothing in the repository
    # shows its processes. It is the project's image, so its demand is unknown (settable), and a
    # group named `server` answers to `--assume server.processes` beside the database server's counts.
    from pgslots.audit import apply_assumptions

    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "lifecycle/ak": '#!/bin/bash -e\nif [[ "$1" == "server" ]]; then\n    exec proj-server\n'
            'elif [[ "$1" == "worker" ]]; then\n    exec celery -A proj worker -c 2\nfi\n',
            "Dockerfile": 'FROM python:3.12-slim\nCOPY . /\nENTRYPOINT ["/lifecycle/ak"]\n',
            "frontend/Dockerfile": 'FROM node:20\nCMD ["npm", "start"]\n',
            "docker-compose.yml": "services:\n  postgresql:\n    image: postgres:16\n"
            "  server:\n    build: .\n    command: server\n"
            "  worker:\n    build: .\n    command: worker\n"
            "  frontend:\n    build: ./frontend\n",
        },
    )
    diagnosis = run_audit(root)
    found = {g.name: g for g in diagnosis.topology.groups}
    assert set(found) == {"server", "worker"}  # the frontend's own image is not the project's
    server = found["server"]
    assert (
        server.concurrency_model == "unmodelled"
        and server.evidence[0].location() == "lifecycle/ak:3"
    )
    assert {"server.processes", "server.per_process", "server.other_clients"} <= {
        u.name for u in diagnosis.topology.unknowns
    }
    assumed = apply_assumptions(
        diagnosis.topology,
        {"server.processes": 2, "server.per_process": 4, "server.max_connections": 50},
    )
    assert {g.name: g.demand.worst for g in assumed.groups} == {"server": 8, "worker": 2}
    assert assumed.slots.max_connections.value == 50
    # Too small a server: the remedies lower what they can name (the worker), never the unknown program.
    crowded = run_audit(
        root, {"server.processes": 20, "server.per_process": 5, "server.max_connections": 50}
    )
    targets = {c.target for r in crowded.remedies for c in r.changes}
    assert "worker" in targets and "server" not in targets


def test_a_service_named_server_is_not_the_database_server(tmp_path: Path) -> None:
    # A compose service called `server` whose gunicorn needs lowering: the remedy's edit used to
    # land on the database server's slots and end in an internal error.
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nCMD ["gunicorn", "proj.wsgi", "--workers", "200"]\n',
            "docker-compose.yml": "services:\n  db:\n    image: postgres:16\n  server:\n    build: .\n",
        },
    )
    diagnosis = run_audit(root)
    server = diagnosis.topology.groups[0]
    assert (
        server.name == "server" and server.evidence[0].location() == "Dockerfile:3"
    )  # the CMD, not `build: .`
    lowered = next(r for r in diagnosis.remedies if r.code == "R05")
    assert [(c.target, c.field, c.value) for c in lowered.changes] == [("server", "processes", 97)]
    assert lowered.predicted is not None and lowered.predicted.worst == 97


def test_the_asgi_limit_is_proposed_in_each_servers_own_terms(tmp_path: Path) -> None:
    # daphne (a start script sending celery and daphne to the background, then `wait`) has no
    # concurrency limit: the remedy is uvicorn with one, never `--limit-concurrency` on daphne.
    # granian's limit is `--backpressure`.
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "start.sh": "#!/bin/bash\npython manage.py migrate --noinput\ncelery -A proj worker --concurrency=1 &\n"
            "daphne -b 0.0.0.0 -p 8000 \\\n    proj.asgi:application 2>&1 | grep -v /health &\n"
            "DAPHNE_PID=$!\nwait $DAPHNE_PID\n",
            "Procfile": "web: ./start.sh\nws: granian --interface asgi proj.asgi:application --workers 2\n",
        },
    )
    diagnosis = run_audit(root)
    found = {g.name: g for g in diagnosis.topology.groups}
    assert (
        found["web"].server_model == "asgi (daphne)"
        and found["web"].evidence[0].location() == "start.sh:4"
    )
    assert found["web/celery-worker"].demand.worst == 1
    limit = next(r for r in diagnosis.remedies if r.code == "R02")
    assert (
        "daphne cannot limit concurrent requests" in limit.change
        and "uvicorn proj" not in limit.change
    )
    assert "`uvicorn <project>.asgi:application --workers 1 --limit-concurrency" in limit.change
    assert "add `--backpressure" in limit.change and limit.effort == 3


def test_only_exported_variables_reach_the_server_and_the_settings(tmp_path: Path) -> None:
    # `X=8` in a script is a shell variable: gunicorn and Django do not see it; `export X=8` or
    # `set -a` before it puts it in their environment. A loop over the settings' own DATABASES
    # runs once per alias.
    settings = (
        "import os\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n"
        "for alias in DATABASES:\n    DATABASES[alias]['CONN_MAX_AGE'] = int(os.getenv('CMA', 0))\n"
    )
    common = {
        "proj/__init__.py": "",
        "proj/settings.py": settings,
        "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
        "Procfile": "web: ./start.sh\n",
    }
    for n, (script, workers, cma) in enumerate(
        [
            ("WEB_CONCURRENCY=8\nCMA=60\nexec gunicorn proj.wsgi\n", 1, 0),
            ("export WEB_CONCURRENCY=8\nCMA=60\nexport CMA\nexec gunicorn proj.wsgi\n", 8, 60),
            (
                "set -a\nWEB_CONCURRENCY=8\nset +a\nCMA=60\nexec gunicorn proj.wsgi --workers $WEB_CONCURRENCY\n",
                8,
                0,
            ),
        ]
    ):
        web = groups(write(tmp_path / str(n), {**common, "start.sh": "#!/bin/sh\n" + script}))[
            "web"
        ]
        assert (web.processes.value, web.policy.conn_max_age) == (workers, cma), script


def test_a_script_that_runs_the_function_its_argument_names(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "run.sh": "#!/bin/bash\nweb() {\n  exec gunicorn proj.wsgi --workers 5\n}\n"
            'worker() { exec celery -A proj worker -c 3; }\n"$@"\n',
            "Procfile": "web: ./run.sh web\nworker: ./run.sh worker\n",
        },
    )
    found = groups(root)
    assert (found["web"].server_model, found["web"].demand.worst) == ("gunicorn sync", 5)
    assert (found["worker"].concurrency_model, found["worker"].demand.worst) == ("prefork", 3)


SETTINGS = {
    "proj/__init__.py": "",
    "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 0}}\n",
    "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
}


def test_docker_runs_entrypoint_with_cmd_by_its_rules(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            # shell-form ENTRYPOINT: Docker ignores CMD (the `--workers 9` never reaches gunicorn)
            "Dockerfile": 'FROM python:3.12 AS base\nENTRYPOINT gunicorn proj.wsgi --workers 3\nCMD ["--workers", "9"]\n'
            "FROM python:3.12 AS shellcmd\nCMD celery -A proj worker -c 6\n",
            "docker-compose.yml": "services:\n  web:\n    build: {context: ., target: base}\n"
            "  worker:\n    build: {context: ., target: shellcmd}\n",
        },
    )
    found = groups(root)
    assert (found["web"].processes.value, found["web"].evidence[0].location()) == (
        3,
        "Dockerfile:2",
    )
    assert (found["worker"].server_model, found["worker"].processes.value) == ("celery prefork", 6)


def test_an_entrypoint_prestep_on_its_argument_is_not_a_dispatcher(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "entrypoint.sh": '#!/bin/sh\nif [ "$1" = "gunicorn" ]; then\n  python manage.py migrate\nfi\nexec su-exec app "$@"\n',
            "dispatch.sh": '#!/bin/sh\ncase "$1" in\n  web) exec gunicorn proj.wsgi -w 2 ;;\nesac\nexec "$@"\n',
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nENTRYPOINT ["dumb-init", "/app/entrypoint.sh"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n    command: gunicorn proj.wsgi -w 4\n"
            "  other:\n    build: .\n    entrypoint: /app/dispatch.sh\n    command: web\n",
        },
    )
    found = groups(root)
    assert (found["web"].server_model, found["web"].processes.value) == ("gunicorn sync", 4)
    assert (found["other"].processes.value, found["other"].evidence[0].location()) == (
        2,
        "dispatch.sh:3",
    )


def test_lock_file_evidence_is_the_package_entry_not_a_dependency_mention(tmp_path: Path) -> None:
    from pgslots.deploy.readers import RepoFiles
    from pgslots.deploy.readers.versions import read_versions

    root = write(
        tmp_path,
        {
            "uv.lock": 'version = 1\n\n[[package]]\nname = "app"\nversion = "1.0"\ndependencies = [\n    { name = "django" },\n]\n\n'
            '[[package]]\nname = "django"\nversion = "5.2.4"\n',
            "Pipfile.lock": '{\n  "_meta": {"requires": {"celery": "x"}},\n  "default": {\n    "celery": {\n      "version": "==5.5.3"\n    }\n  }\n}\n',
        },
    )
    facts = {f.package: f for f in read_versions(RepoFiles.scan(root))}
    assert (facts["django"].version, facts["django"].evidence.location()) == ("5.2.4", "uv.lock:11")
    assert (facts["celery"].version, facts["celery"].evidence.location()) == (
        "5.5.3",
        "Pipfile.lock:4",
    )


def test_a_cpu_formula_takes_its_value_from_the_assumed_cpu_count() -> None:
    from pgslots.audit import apply_assumptions
    from pgslots.deploy.readers.cpus import evaluate

    assert (
        evaluate("min(cpus, 12)", 4) == 4
        and evaluate("min(cpus, 12)", 64) == 12
        and evaluate("cpus * 2 + 1", 3) == 7
    )
    topology = run_audit(
        Path(__file__).parent / "fixtures" / "repos" / "gunicorn_cpu_formula"
    ).topology
    web = {g.name: g for g in topology.groups}["web"]
    assert (web.per_process.unknown, web.per_process.formula) == ("web.cpus", "min(cpus, 12)")
    for cpus, worst in ((4, 8), (16, 24)):
        assumed = apply_assumptions(topology, {"web.cpus": cpus})
        assert {g.name: g for g in assumed.groups}["web"].demand.worst == worst


def test_env_file_examples_under_the_names_projects_use(tmp_path: Path) -> None:
    from pgslots.deploy.readers import RepoFiles
    from pgslots.deploy.readers.envfiles import parse_env_file, resolve_env_file

    for example in (".env.example", ".env-dist", ".env.dist", ".env.sample", "env.template"):
        root = tmp_path / example.strip(".")
        write(root, {example: "A=1\nURL=postgres://${USER_NAME:-app}@db/${A}\n"})
        repo = RepoFiles.scan(root)
        chosen, why = resolve_env_file(repo, ".env")
        assert chosen == example, (example, why)
        assert parse_env_file(repo, example).value("URL") == "postgres://app@db/1"


def test_wrappers_that_run_their_arguments(tmp_path: Path) -> None:
    launch = launch_from_text(
        "dockerize -wait tcp://db:5432 -timeout 120s -wait-retry-interval=5s gunicorn proj.wsgi -w 3"
    )
    assert (launch.program, launch.options["workers"]) == ("gunicorn", "3")
    root = write(
        tmp_path,
        {
            **SETTINGS,
            # the nginx buildpack's wrapper: `COMMAND=${@:$n}` then `$COMMAND` in a background subshell
            "bin/start-nginx": "#!/usr/bin/env bash\nn=1\n(\n  COMMAND=${@:$n}\n  $COMMAND\n) &\n/usr/bin/nginx -c /x.conf\n",
            "Procfile": "web: bin/start-nginx gunicorn proj.wsgi --workers 2\n",
        },
    )
    assert groups(root)["web"].processes.value == 2


def test_a_buildpack_wrapper_with_nothing_to_run_is_its_sidecar_alone(tmp_path: Path) -> None:
    # TabbycatDebate/tabbycat ProcfileMulti:6 `nginx: bin/start-nginx` (the nginx buildpack's
    # script, not in the repository): nginx alone, which holds no connection.
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "Procfile": "web: honcho -f ProcfileMulti start\n",
            "ProcfileMulti": "nginx: bin/start-nginx\nwsgi: gunicorn proj.wsgi --workers 3\n",
        },
    )
    found = groups(root)
    assert set(found) == {"web/wsgi"} and found["web/wsgi"].processes.value == 3


def test_a_cron_daemon_runs_its_crontab_and_a_pg_dump_line_is_counted_once(tmp_path: Path) -> None:
    # The image's cron daemon runs docker/cron.d/app (COPY to /etc/cron.d/): the manage.py line is
    # a one-shot job; the pg_dump line is the backup group the crontab scan already counts.
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "docker/cron.d/app": '# jobs\nMAILTO=""\n@daily root pg_dump -h db app > /backup/app.sql\n'
            "*/10 * * * * root cd /app && python manage.py send_mail\n",
            "Dockerfile": "FROM python:3.12\nCOPY . /app\nCOPY docker/cron.d/app /etc/cron.d/app\nWORKDIR /app\n"
            'CMD ["gunicorn", "proj.wsgi", "-w", "2"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n  cron:\n    build: .\n    command: cron -f\n",
        },
    )
    found = groups(root)
    assert set(found) == {"web", "cron", "pg_dump"}, sorted(found)
    assert found["cron"].concurrency_model == "job" and found["cron"].demand.worst == 1


def test_a_commented_heredoc_does_not_hide_the_rest_of_the_script(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "docker-entrypoint.sh": "#!/bin/bash\n# function ready(){\n# python << END\n# import sys\n# END\n# }\nexec $@\n",
            "Dockerfile": 'FROM alpine\nCOPY docker-entrypoint.sh /usr/local/bin/\nENTRYPOINT ["docker-entrypoint.sh"]\n'
            'CMD ["gunicorn", "proj.wsgi", "-w", "3"]\n',
        },
    )
    assert groups(root)["web"].processes.value == 3


def test_a_missing_variable_takes_the_key_error_handler_in_a_complete_environment(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "gunicorn.conf.py": "import os\n\ndef optional(name):\n    try:\n        return os.environ[name]\n    except KeyError:\n"
            "        return None\n\nworkers = optional('GUNICORN_WORKERS') or 2\n",
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nWORKDIR /app\nCMD ["gunicorn", "proj.wsgi"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      DJANGO_SETTINGS_MODULE: proj.settings\n",
            # outside a `try`, os.environ["DB_HOST"] unset is not a reason to drop DATABASES
            "proj/settings.py": "import os\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'HOST': os.environ['DB_HOST'],"
            " 'CONN_MAX_AGE': 0}}\n",
        },
    )
    topology = run_audit(root).topology
    assert {g.name: g for g in topology.groups}["web"].processes.value == 2
    assert [a.name for a in topology.django.aliases] == ["default"] and not topology.django.gaps


def test_a_project_command_that_starts_a_pool_is_an_unknown_group(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "stator/__init__.py": "",
            "stator/runner.py": "from concurrent.futures import ThreadPoolExecutor\n\nclass Runner:\n    def run(self, n):\n"
            "        self.pool = ThreadPoolExecutor(max_workers=n)\n",
            "stator/management/commands/runstator.py": "from stator.runner import Runner\n",
            "Procfile": "web: newrelic-admin run-program bin/start-pgbouncer gunicorn proj.wsgi -w 2\nworker: python manage.py runstator\n",
        },
    )
    found = groups(root)
    assert found["web"].processes.value == 2
    assert found["worker"].concurrency_model == "unmodelled"
    assert "stator/runner.py:5" in {e.location() for e in found["worker"].evidence}


def test_no_settings_module_in_the_repository_makes_the_connection_settings_unknown(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nCMD ["gunicorn", "pretalx.wsgi", "-w", "2"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      DJANGO_SETTINGS_MODULE: pretalx.settings\n"
            "  db:\n    image: postgres:16\n",
        },
    )
    topology = run_audit(root).topology
    unknowns = {u.name: u.question for u in topology.unknowns}
    assert {"settings.databases", "settings.engine", "settings.conn_max_age"} <= set(unknowns)
    assert "docker-compose.yml:5" in unknowns["settings.conn_max_age"]
    assert {g.name: g for g in topology.groups}[
        "web"
    ].demand.steady == 2  # CONN_MAX_AGE unknown: taken as persistent


def test_supervisord_env_placeholders_and_an_unknown_granian_interface(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "supervisor/web.conf": "[program:granian]\ncommand = granian --interface %(ENV_GRANIAN_INTERFACE)s --workers %(ENV_WEB_WORKERS)s proj.wsgi:application\n",
        },
    )
    web = groups(root)["granian"]
    assert (
        web.processes.unknown == "granian.processes"
        and web.per_process.unknown == "granian.per_process"
    )


def test_supervisord_started_by_an_entry_script_gets_its_exports_and_includes(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "docker/start.sh": '#!/bin/sh\nexport WEB_WORKERS=3\nif [ -z "$CELERY_CONCURRENCY" ]; then\n  export CELERY_CONCURRENCY=5\nfi\n'
            "exec supervisord --nodaemon -c /etc/supervisor/supervisord.conf\n",
            "docker/supervisor/supervisord.conf": "[supervisord]\nnodaemon=true\n\n[include]\nfiles = /etc/supervisor/conf.d/*.conf\n",
            "docker/supervisor/conf.d/web.conf": "[program:web]\ncommand=gunicorn proj.wsgi --workers %(ENV_WEB_WORKERS)s\n",
            "docker/supervisor/conf.d/worker.conf": "[program:worker]\ncommand=celery -A proj worker -c %(ENV_CELERY_CONCURRENCY)s\n",
            "Dockerfile": "FROM python:3.12\nCOPY . /app\nCOPY docker/supervisor /etc/supervisor\nCOPY docker/start.sh /start.sh\n"
            'ENTRYPOINT ["/start.sh"]\n',
            "docker-compose.yml": "services:\n  app:\n    build: .\n    environment:\n      DJANGO_SETTINGS_MODULE: proj.settings\n",
        },
    )
    found = groups(root)
    assert (found["app/web"].processes.value, found["app/worker"].processes.value) == (3, 5)


def test_eval_of_a_literal_command_and_channels_runworker(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "scripts/web.sh": '#!/bin/sh\npython manage.py migrate\nWORKER_COMMAND="gunicorn proj.wsgi --workers 9"\neval ${WORKER_COMMAND}\n',
            "Procfile": "web: scripts/web.sh\nworker: python manage.py runworker channels\n",
        },
    )
    found = groups(root)
    assert (found["web"].server_model, found["web"].processes.value) == ("gunicorn sync", 9)
    assert (
        found["worker"].concurrency_model,
        found["worker"].demand.steady,
        found["worker"].demand.worst,
    ) == ("sync", 0, 1)


def test_honcho_starts_the_process_types_of_its_procfile(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "bin/run.sh": "#!/usr/bin/env bash\npython manage.py migrate --no-input\nhoncho -f ./Procfile.docker start\n",
            "Procfile.docker": "nginx: nginx -c ./nginx.conf\nwsgi: gunicorn proj.wsgi --workers 4\nworker: celery -A proj worker -c 3\n",
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nWORKDIR /app\nCMD ["bin/run.sh"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      DJANGO_SETTINGS_MODULE: proj.settings\n",
        },
    )
    found = groups(root)
    assert set(found) == {"web/wsgi", "web/worker"}  # nginx holds no database connection
    assert (found["web/wsgi"].processes.value, found["web/worker"].processes.value) == (4, 3)


def test_idle_loops_and_proxies_hold_no_connection() -> None:
    from pgslots.deploy.readers.commands import holds_no_database

    for text in (
        '/bin/sh -c "while true; do sleep 10;done"',
        "tail -f /dev/null",
        "/cloud_sql_proxy -instances=p:r:i=tcp:5432",
    ):
        assert holds_no_database(launch_from_text(text).argv), text
    assert not holds_no_database(
        launch_from_text('sh -c "python manage.py migrate && gunicorn app.wsgi"').argv
    )


def test_the_production_module_beside_named_local_settings_and_env_db_default(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings/__init__.py": "",
            "proj/settings/base.py": "import environ\nenv = environ.Env()\nDATABASES = {'default': env.db()}\n",
            "proj/settings/local.py": "from .base import *\nDATABASES['default']['CONN_MAX_AGE'] = 600\n",
            "proj/settings/production.py": "from .base import *\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings.local')\n",
            "Procfile": "web: gunicorn proj.wsgi --workers 2\n",
        },
    )
    topology = run_audit(root).topology
    assert topology.settings_module == "proj.settings.production"
    web = {g.name: g for g in topology.groups}["web"]
    assert (web.policy.conn_max_age, web.policy.conn_max_age_known, web.demand.steady) == (
        0,
        True,
        0,
    )
    assert [a.name for a in topology.django.aliases] == ["default"]  # env.db() reads DATABASE_URL


def test_a_cpu_formula_as_the_default_of_an_unset_variable(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "gunicorn.conf.py": "import multiprocessing, os\nworkers = int(os.environ.get('GUNICORN_WORKERS', multiprocessing.cpu_count() * 2 + 1))\n",
            "Procfile": "web: gunicorn proj.wsgi -c gunicorn.conf.py\n",
        },
    )
    web = groups(root)["web"]
    assert (web.processes.unknown, web.processes.formula, web.demand.worst) == (
        "web.cpus",
        "cpus * 2 + 1",
        3,
    )


def test_shell_arithmetic_over_nproc_is_a_cpu_formula(tmp_path: Path) -> None:
    from pgslots.audit import apply_assumptions

    root = write(
        tmp_path,
        {
            **SETTINGS,
            "start.sh": '#!/bin/bash\nif [ -z "$WEB_CONCURRENCY" ]; then\n  export WEB_CONCURRENCY=$((2*$(nproc)+1))\nfi\n'
            "exec gunicorn proj.wsgi --workers $WEB_CONCURRENCY\n",
            "Procfile": "web: ./start.sh\n",
        },
    )
    topology = run_audit(root).topology
    web = {g.name: g for g in topology.groups}["web"]
    assert (web.processes.unknown, web.processes.formula, web.demand.worst) == (
        "web.cpus",
        "2 * cpus + 1",
        3,
    )
    assert {g.name: g for g in apply_assumptions(topology, {"web.cpus": 4}).groups}[
        "web"
    ].demand.worst == 9
    from pgslots.deploy.readers.cpus import shell_formula

    assert (
        shell_formula(
            "${GUNICORN_WORKERS:-${WEB_CONCURRENCY:-$((2 * $(nproc)))}}", lambda name: None
        )
        == "2 * cpus"
    )


def test_systemd_continued_exec_start_and_oneshot_units(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "deploy/gunicorn.service": "[Service]\nExecStart=/bin/bash -c 'PATH=/x/bin:$PATH exec /x/bin/gunicorn \\\n  --workers 3 \\\n"
            "  --worker-class=gevent \\\n  proj.wsgi:application'\n",
            "deploy/replication.service": "[Service]\nType=oneshot\nExecStart=/usr/bin/python manage.py migrate\n",
            "deploy/cloudwatch.service": "[Service]\nExecStart=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config\n",
        },
    )
    found = groups(root)
    assert (found["gunicorn"].processes.value, found["gunicorn"].concurrency_model) == (
        3,
        "greenlets",
    )
    assert found["replication"].concurrency_model == "job" and "cloudwatch" not in found


def test_gevent_with_persistent_connections_is_unbounded(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 60}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
            "Procfile": "web: gunicorn proj.wsgi --workers 3 --worker-class=gevent\n",
        },
    )
    web = groups(root)["web"]
    assert (web.demand.steady, web.demand.worst) == (3, None)  # domain reference 7.1, gunicorn #996


def test_an_entry_script_that_only_sets_up_and_hands_over_nothing_is_a_job(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "init.sh": '#!/bin/sh\npython manage.py complete_initialization\nexec "$@"\n',
            "loop.sh": '#!/bin/sh\npython manage.py qcluster\nexec "$@"\n',
            "Dockerfile": "FROM python:3.12\nCOPY . /app\nWORKDIR /app\n",
            "docker-compose.yml": "services:\n  init:\n    build: .\n    entrypoint: ['/app/init.sh']\n"
            "  queue:\n    build: .\n    entrypoint: ['/app/loop.sh']\n"
            "  web:\n    build: .\n    command: gunicorn proj.wsgi -w 2\n    environment:\n      DJANGO_SETTINGS_MODULE: proj.settings\n",
        },
    )
    found = groups(root)
    assert (found["init"].concurrency_model, found["init"].demand.worst) == ("job", 1)
    assert (found["queue"].concurrency_model, found["queue"].processes.formula) == (
        "prefork",
        "cpus + 2",
    )  # django-q


def test_compound_tests_option_variables_and_a_benchmark_manage_py(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "benchmarks/bench/manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n",
            "benchmarks/bench/mysite/__init__.py": "",
            "benchmarks/bench/mysite/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3'}}\n",
            "worker.sh": '#!/bin/env bash\nPOOL=${POOL:-prefork}\nif [ "$POOL" == "gevent" ] || [ "$POOL" == "prefork" ]; then\n'
            '    SCALING="--autoscale=3,2"\nelse\n    SCALING="--concurrency=9"\nfi\nexec celery -A proj worker --pool=$POOL $SCALING\n',
            "Procfile": "worker: ./worker.sh\n",
        },
    )
    topology = run_audit(root).topology
    assert topology.settings_module == "proj.settings"
    assert {g.name: g for g in topology.groups}["worker"].processes.value == 3


def test_a_manage_equivalent_in_a_loop_is_a_periodic_job(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "proj/__main__.py": "import sys\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
            "cron.sh": "#!/bin/bash\nwhile [ true ]; do\n    uv run python -m proj run_periodic\n    sleep 60\ndone\n",
            "Procfile": "cron: bash cron.sh\n",
        },
    )
    cron = groups(root)["cron"]
    assert (cron.concurrency_model, cron.demand.steady, cron.demand.worst) == ("job", 0, 1)


def test_a_make_target_runs_its_recipe(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            **SETTINGS,
            "Makefile": "CELERY = celery -A proj worker --concurrency=3\nNUM_PROCS ?= 2\n\nserver: NUM_THREADS:=5\nserver: collectstatic\n"
            "\tcd proj/ && gunicorn proj.wsgi --workers=${NUM_PROCS} --threads=${NUM_THREADS} || sleep infinity\n\n"
            "workers:\n\t$(CELERY)\n\ncollectstatic:\n\tpython manage.py collectstatic --noinput\n",
            "Dockerfile": 'FROM python:3.12\nCOPY . /app\nWORKDIR /app\nENTRYPOINT ["make", "server"]\n',
            "docker-compose.yml": "services:\n  web:\n    build: .\n    environment:\n      DJANGO_SETTINGS_MODULE: proj.settings\n"
            "  worker:\n    build: .\n    entrypoint: make workers\n",
        },
    )
    found = groups(root)
    assert (found["web"].processes.value, found["web"].per_process.value) == (2, 5)
    assert "Makefile:6" in {e.location() for e in found["web"].evidence}
    assert found["worker"].processes.value == 3


def test_custom_yaml_tags_are_read_and_reported_with_their_line_never_their_value() -> None:
    """`!Sub`/`!Ref`/`!vault` used to make the YAML loader fail and the manifest was lost."""
    topology = run_audit(Path(__file__).parent / "fixtures" / "repos" / "k8s_yaml_tags").topology
    assert {g.name for g in topology.groups} == {"web", "worker"}
    tagged = [n for n in topology.notes if "custom YAML tags" in n]
    assert any(
        n.startswith("deploy/web.yaml:") and "!Sub at line 12" in n and "!vault at line 21" in n
        for n in tagged
    ), tagged
    assert any(n.startswith("deploy/worker.yaml:") and "!Ref at line 6" in n for n in tagged), (
        tagged
    )
    assert not any("ANSIBLE_VAULT" in n or "Registry" in n for n in topology.notes)
    assert not topology.read_errors


def test_an_unrendered_helm_chart_is_an_unknown_group_citing_its_production_values() -> None:
    topology = run_audit(Path(__file__).parent / "fixtures" / "repos" / "helm_chart").topology
    (shop,) = topology.groups
    # values-production.yaml is layered over values.yaml (helm -f values.yaml -f values-production.yaml)
    assert (
        "web.env.WEB_CONCURRENCY=4 (deploy/helm/shop/values-production.yaml:7)"
        in shop.unknown_reason
    )
    assert (
        "worker.replicaCount=2 (deploy/helm/shop/values-production.yaml:10)" in shop.unknown_reason
    )
    assert (
        "web.autoscaling.maxReplicas=8 (deploy/helm/shop/values-production.yaml:5)"
        in shop.unknown_reason
    )
    assert (
        "worker.env.CELERY_CONCURRENCY=4 (deploy/helm/shop/values.yaml:16)" in shop.unknown_reason
    )
    assert any(
        "alternatives not used: deploy/helm/shop/values-staging.yaml" in n for n in topology.notes
    )
    assert any(
        "Helm chart deploy/helm/infra: every workload runs a fixed image (redis:7-alpine)" in n
        for n in topology.notes
    )


def test_ansible_unit_templates_are_read_with_the_roles_variables(tmp_path: Path) -> None:
    """group_vars of the production group override role defaults; an unresolved variable is an
    unknown (`${name}`), a secret is never substituted; a supervisord program template is read."""
    fixture = Path(__file__).parent / "fixtures" / "repos" / "ansible_role"
    topology = run_audit(fixture).topology
    rendered = next(
        n for n in topology.notes if n.startswith("deploy/roles/app/templates/gunicorn.service.j2")
    )
    assert "gunicorn_workers=6 (deploy/group_vars/production.yml:2)" in rendered
    assert "not resolved (unknown): db_password" in rendered
    root = write(
        tmp_path,
        {
            "requirements.txt": "Django==4.2.16\ngunicorn==23.0.0\n",
            "roles/web/defaults/main.yml": "app: shop\nvenv: /srv/{{ app }}/venv\n",
            "roles/web/templates/supervisor.conf.j2": "[program:{{ app }}-web]\ncommand={{ venv }}/bin/gunicorn shop.wsgi --workers {{ web_workers }}\n",
        },
    )
    found = groups(root)
    assert set(found) == {"shop-web"}
    assert (
        found["shop-web"].processes.value is None
        and found["shop-web"].processes.unknown == "shop-web.processes"
    )
    # A start script the role renders from its own template, named by an unresolved program name.
    write(
        tmp_path,
        {
            "roles/web/templates/supervisor.conf.j2": "[program:{{ site_name }}]\ncommand={{ venv }}/bin/gunicorn_start\n",
            "roles/web/templates/gunicorn_start.j2": "#!/bin/sh\nexec {{ venv }}/bin/gunicorn shop.wsgi --workers {{ workers | default(3) }}\n",
        },
    )
    found = groups(tmp_path)
    assert set(found) == {"supervisor"}
    assert found["supervisor"].processes.value == 3


def test_workflow_images_are_paired_with_the_dockerfile_their_job_builds() -> None:
    # metadata-action's block-scalar `images:`, build-push `file:` from the job's matrix, and an
    # expression whose string literal is the image (`${{ cond && 'org/app' || ... }}`).
    from pgslots.deploy.readers import RepoFiles
    from pgslots.deploy.readers.workflows import published_images

    root = Path(__file__).parent / "fixtures" / "repos" / "image_published_by_ci"
    images = published_images(RepoFiles.scan(root), ".github/workflows/release.yml")
    assert [(i.name, i.dockerfile, i.line) for i in images] == [
        ("acmeshop/shop", "Dockerfile", 20),
        ("ghcr.io/acmeshop/shop", "Dockerfile", 21),
        ("acmeshop/shop-standalone", "Dockerfile", 36),
    ]


def test_image_builds_in_scripts_and_their_wrappers_name_their_dockerfile() -> None:
    from pgslots.deploy.readers.imagebuilds import script_builds

    script = (
        'DOCKER=docker\nTAG_NS="${TAG_NS:-acme}"\n'
        "build() {\n    $DOCKER buildx build --platform linux/amd64 $@ --load\n}\n"
        "build -f web/Dockerfile.dev -t $TAG_NS/web:rolling web/\n"
        "build --tag $TAG_NS/core:rolling core/\n"
        "docker build \\\n  -t ghcr.io/acme/api:1 -f docker/Dockerfile.api .\n"
    )
    found = {b.tags[0]: (b.dockerfile, b.line) for b in script_builds("build.sh", script)}
    assert found == {
        "acme/web:rolling": ("web/Dockerfile.dev", 6),
        "acme/core:rolling": ("core/Dockerfile", 7),
        "ghcr.io/acme/api:1": ("docker/Dockerfile.api", 9),
    }


def test_settings_written_for_python_314_except_without_parentheses_are_read(
    tmp_path: Path,
) -> None:
    # PEP 758: `except A, B:` is valid from Python 3.14; the audit's own Python may be older.
    root = write(
        tmp_path,
        {
            "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n',
            "proj/__init__.py": "",
            "proj/settings.py": (
                "def release():\n    try:\n        return open('VERSION').read()\n"
                "    except FileNotFoundError, KeyError:\n        return 'NA'\n\n"
                "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql',"
                " 'NAME': 'proj', 'CONN_MAX_AGE': 0}}\n"
            ),
            "Procfile": "web: gunicorn proj.wsgi --workers 3\n",
        },
    )
    diagnosis = run_audit(root)
    (web,) = diagnosis.topology.groups
    assert (web.demand.steady, web.demand.worst) == (0, 3)
    assert any("PEP 758" in note for note in diagnosis.topology.notes)


def test_cloud_foundry_instances_from_a_vars_file_are_an_unknown_not_one(tmp_path: Path) -> None:
    """`instances: ((web_instances))` is filled in by `cf push --vars-file`: never a silent 1."""
    root = write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', "
            "'HOST': 'db', 'NAME': 'app'}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'app.settings')\n",
            "Procfile": "web: gunicorn app.wsgi --workers 3\n",
            "manifest.yml": "applications:\n- name: app\n  instances: ((web_instances))\n",
        },
    )
    web = groups(root)["web"]
    assert web.replicas.value is None and web.replicas.unknown == "web.instances"
    assert web.replicas.evidence[0].location() == "manifest.yml:3"
    assert web.hosts.value == 1  # instances are every container: no hosts unknown
    assert (web.demand.steady, web.demand.worst) == (0, 3)  # at the floor of 1 instance


def test_databases_built_by_a_dataclass_of_the_project_are_read(tmp_path: Path) -> None:
    # `PostgresConfig(...).to_django_dict()`: fields from the call or their defaults (through a
    # dataclass base), the method run with `self` bound; conn_max_age's default 0 is the value.
    root = write(
        tmp_path,
        {
            "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n',
            "proj/__init__.py": "",
            "proj/dbconfig.py": (
                "from dataclasses import dataclass, field\n\n"
                "@dataclass(frozen=True)\nclass DBConfig:\n    dbname: str\n    engine: str\n"
                "    host: str | None = None\n    options: dict = field(default_factory=dict)\n"
                "    conn_max_age: int | None = 0\n\n"
                "    def to_django_dict(self):\n"
                "        result = {'ENGINE': self.engine, 'NAME': self.dbname}\n"
                "        if self.host is not None:\n            result['HOST'] = self.host\n"
                "        if self.conn_max_age is not None:\n"
                "            result['CONN_MAX_AGE'] = self.conn_max_age\n"
                "        return result\n\n"
                "@dataclass(frozen=True)\nclass PostgresConfig(DBConfig):\n"
                "    engine: str = 'django.db.backends.postgresql'\n"
            ),
            "proj/settings.py": (
                "import os\nfrom proj.dbconfig import PostgresConfig\n\nDATABASES = {}\n"
                "DATABASES['default'] = PostgresConfig(\n"
                "    dbname='app', host=os.environ.get('POSTGRES_HOST', 'db')\n).to_django_dict()\n"
            ),
            "Procfile": "web: gunicorn proj.wsgi --workers 3\n",
        },
    )
    diagnosis = run_audit(root)
    (web,) = diagnosis.topology.groups
    assert (web.demand.steady, web.demand.worst) == (0, 3)
    (alias,) = diagnosis.topology.django.aliases
    assert (alias.engine, alias.host, alias.database) == (
        "django.db.backends.postgresql",
        "db",
        "app",
    )


def test_an_unreadable_pool_max_size_is_an_unknown_not_min_size(tmp_path: Path) -> None:
    """issue 10 point 4: `max_size` from a variable set nowhere is not psycopg_pool's default
    (min_size): the pool bounds nothing the audit can see, each thread may hold a connection."""
    root = write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": "import os\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql',\n"
            "    'HOST': 'db', 'NAME': 'app', 'OPTIONS': {'pool': {'min_size': 2,\n"
            "    'max_size': int(os.environ['DB_POOL_MAX'])}}}}\n",
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'app.settings')\n",
            "Procfile": "web: gunicorn app.wsgi --workers 2 --threads 8\n",
            "requirements.txt": "Django==5.2.1\npsycopg[pool]==3.2.9\n",
        },
    )
    diagnosis = run_audit(root)
    web = {g.name: g for g in diagnosis.topology.groups}["web"]
    assert not web.policy.pool_max_known
    assert (web.demand.steady, web.demand.worst) == (4, 16)  # 2 x min_size 2 / 2 x 8 threads
    assert "settings.pool_max_size" in [u.name for u in diagnosis.topology.unknowns]
