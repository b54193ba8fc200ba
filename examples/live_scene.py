"""The scene behind the README's `probe`/`watch` examples: real servers, real output.

Starts a throwaway PostgreSQL 18 (max_connections=20, superuser_reserved_connections=3,
reserved_connections=2) and a pgbouncer in transaction mode in front of it, opens the
connections of a small Django + Celery deployment (web, celery-worker, a psql session),
and runs the commands the README shows, printing each command and its output.

    .venv/bin/python examples/live_scene.py
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg

from pgslots.lab.pgbouncer import TempPgbouncer
from pgslots.lab.postgres import TempPostgres, free_port


def run(*args: str) -> None:
    shown = " ".join(f'"{a}"' if " " in a else a for a in args)
    result = subprocess.run([sys.executable, "-m", "pgslots", *args], capture_output=True, text=True)
    print(f"$ pgslots {shown}\n{result.stdout}{result.stderr}(exit {result.returncode})\n")


def main() -> None:
    settings = {"max_connections": 20, "superuser_reserved_connections": 3, "reserved_connections": 2}
    with TempPostgres(settings=settings) as server, contextlib.ExitStack() as stack:
        server.create_database("appdb")
        server.create_role("app")
        server.create_role("monitor", member_of=("pg_monitor", "pg_use_reserved_connections"))
        held = []
        stack.callback(lambda: [c.close() for c in held])

        def hold(user: str, dbname: str, application: str, n: int, in_transaction: bool = False) -> None:
            for _ in range(n):
                conn = server.connect(user, dbname, application_name=application)
                if in_transaction:
                    conn.execute("BEGIN")
                    conn.execute("SELECT 1")
                held.append(conn)

        hold("app", "appdb", "web", 6)
        hold("app", "appdb", "web", 1, in_transaction=True)
        hold("app", "appdb", "celery-worker", 4)
        hold("postgres", "postgres", "psql", 1)
        time.sleep(2)
        monitor = server.dsn("monitor", "appdb")
        run("probe", monitor, "--app-role", "app")

        hold("app", "appdb", "web", 3)  # now the app role has no slot left
        run("probe", server.dsn("app", "appdb"))
        run("watch", monitor, "--app-role", "app", "--interval", "1", "--count", "3")

        port = free_port()
        watch = subprocess.Popen([sys.executable, "-m", "pgslots", "watch", monitor, "--app-role", "app",
                                  "--interval", "1", "--prometheus", f"127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with contextlib.suppress(OSError):
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if "pgslots_max_connections" in text:
                    break
            time.sleep(0.1)
        print(f"$ curl -s http://127.0.0.1:{port}/metrics | grep -v '^#'")
        print("\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n")
        watch.terminate()
        watch.wait()

        for conn in held[-3:]:
            conn.close()
        del held[-3:]
        bouncer = stack.enter_context(TempPgbouncer(server, {"appdb": "appdb"}, settings={"default_pool_size": 2},
                                                    users=("app",)))

        def client(sql: str) -> None:
            with psycopg.connect(bouncer.dsn("appdb", "app", application_name="web"), autocommit=True,
                                 prepare_threshold=None) as conn:
                conn.execute(sql)

        threads = [threading.Thread(target=client, args=("SELECT pg_sleep(4)",)) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        threads += [threading.Thread(target=client, args=("SELECT 1",)) for _ in range(3)]
        for thread in threads[2:]:
            thread.start()
        time.sleep(1.5)
        run("probe", monitor, "--app-role", "app", "--pgbouncer", bouncer.admin_dsn(), "--format", "markdown")
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
