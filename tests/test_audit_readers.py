"""The audit's readers on the shapes real repositories use, one small tree per case."""

from __future__ import annotations

from pathlib import Path

from pgslots.deploy.audit import run_audit
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
        "exec newrelic-admin run-program /usr/local/bin/gunicorn config.asgi -k uvicorn_worker.UvicornWorker": ("gunicorn", "worker_class"),
        "sh -c 'python manage.py migrate && exec gunicorn proj.wsgi -w 4'": ("gunicorn", "workers"),
        "poetry run celery -A proj worker --concurrency=${CELERY_CONCURRENCY:-4} -P gevent": ("celery-worker", "concurrency"),
        "ddtrace-run python -m uvicorn proj.asgi:application --workers 2 --limit-concurrency 30": ("uvicorn", "limit_concurrency"),
        "gosu app uwsgi --ini uwsgi.ini --processes 4 --threads 2": ("uwsgi", "threads"),
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
    root = write(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 0}}\n",
        "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
        "gunicorn.conf.py": "import multiprocessing\nworkers = multiprocessing.cpu_count() * 2 + 1\nthreads = 4\n",
        "Procfile": "web: GUNICORN_CMD_ARGS='--workers 3' gunicorn proj.wsgi\n",
    })
    web = groups(root)["web"]
    assert web.concurrency_model == "threads" and web.per_process.value == 4
    assert web.processes.value == 3  # GUNICORN_CMD_ARGS beats the config file
    assert web.demand.worst == 12


def test_custom_uvicorn_worker_with_a_limit_is_bounded(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql'}}\n",
        "proj/asgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
        "proj/workers.py": "from uvicorn_worker import UvicornWorker\n\n\nclass Limited(UvicornWorker):\n"
                           "    CONFIG_KWARGS = {'loop': 'auto', 'http': 'auto', 'limit_concurrency': 25}\n",
        "Procfile": "web: gunicorn proj.asgi -w 2 -k proj.workers.Limited\n",
        "requirements.txt": "Django==5.2.1\n",
    })
    web = groups(root)["web"]
    assert web.concurrency_model == "asgi" and web.per_process.value == 25
    assert web.demand.worst == 50
    assert any(e.path == "proj/workers.py" for e in web.per_process.evidence)


def test_pool_with_persistent_connections_and_old_django_are_errors(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proj/__init__.py": "",
        "proj/settings.py": "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'CONN_MAX_AGE': 60,\n"
                            "    'OPTIONS': {'pool': {'min_size': 2, 'max_size': 6}}}}\n",
        "proj/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
        "Procfile": "web: gunicorn proj.wsgi -w 3\n",
        "requirements.txt": "Django==5.0.6\npsycopg2-binary==2.9.9\n",
    })
    diagnosis = run_audit(root)
    codes = {f.code for f in diagnosis.findings}
    assert {"PGS004", "PGS016", "PGS017"} <= codes
    web = diagnosis.topology.groups[0]
    assert (web.demand.steady, web.demand.worst) == (6, 18)
    assert [r.code for r in diagnosis.remedies] == ["R12"]


def test_official_image_superuser_through_an_uncommitted_env_file(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "config/__init__.py": "", "config/settings/__init__.py": "",
        "config/settings/production.py": "import environ\nenv = environ.Env()\nDATABASES = {'default': env.db('DATABASE_URL')}\n",
        "config/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.production')\n",
        "docker-compose.production.yml": "services:\n  django:\n    build: .\n    env_file: [./.envs/.production/.postgres]\n"
                                         "    command: /start\n  postgres:\n    image: postgres:17\n    env_file: [./.envs/.production/.postgres]\n"
                                         "    command: postgres -c max_connections=50\n",
        "Dockerfile": "FROM python:3.12\nCOPY ./start /start\nCOPY ./entrypoint /entrypoint\nENTRYPOINT [\"/entrypoint\"]\n",
        "entrypoint": "#!/bin/sh\nexport DATABASE_URL=\"postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/${POSTGRES_DB}\"\nexec \"$@\"\n",
        "start": "#!/bin/sh\nexec gunicorn config.wsgi --workers 5\n",
    })
    diagnosis = run_audit(root)
    slots = diagnosis.topology.slots
    assert slots.role_is_superuser is True and slots.usable == 50
    assert "PGS015" in {f.code for f in diagnosis.findings}
    assert diagnosis.topology.groups[0].demand.worst == 5


def test_second_alias_on_another_server_is_not_counted(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "app/__init__.py": "",
        "app/settings.py": "import os\nimport dj_database_url\n"
                           "DATABASES = {'default': dj_database_url.config(conn_max_age=600, conn_health_checks=True),\n"
                           "             'analytics': dj_database_url.parse(os.environ['ANALYTICS_URL'])}\n",
        ".env": "DJANGO_SETTINGS_MODULE=app.settings\nDATABASE_URL=postgres://u:secret-pw-1@db1:5432/app\n"
                "ANALYTICS_URL=postgres://u:secret-pw-2@db2:5432/warehouse\n",
        "Procfile": "web: gunicorn app.wsgi --workers 2 --threads 4\nworker: celery -A app worker --autoscale=10,2\n",
        "requirements.txt": "celery==5.3.6\n",
    })
    found = groups(root)
    assert found["web"].aliases == ("default",)
    assert (found["web"].demand.steady, found["web"].demand.worst) == (8, 8)
    assert (found["worker"].demand.steady, found["worker"].demand.worst) == (10, 10)


def test_mounted_postgresql_conf_and_pgbouncer_ini_are_read(tmp_path: Path) -> None:
    root = write(tmp_path, {
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
    })
    diagnosis = run_audit(root)
    t = diagnosis.topology
    assert t.slots.max_connections.value == 250 and t.slots.reserved_connections.value == 5
    assert t.slots.usable == 250 - 3 - 5
    assert t.pgbouncer is not None and t.pgbouncer.pool_mode == "transaction" and t.pgbouncer.capacity == 45
    web = t.groups[0]
    assert web.policy.via_pgbouncer and web.demand.worst == 40
    assert t.demand.worst == 40  # min(pools 45, clients 40)
    assert not t.unused_configs
    assert "PGS011" not in {f.code for f in diagnosis.findings}
