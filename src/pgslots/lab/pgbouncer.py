"""A throwaway pgbouncer (the real Debian binary) in front of a `TempPostgres`.

Like the server, it is our direct child (no `-d` daemon mode) so we can always stop it,
and it runs as the unprivileged system user when we are root (pgbouncer refuses root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pgslots.lab.postgres import (
    TempPostgres,
    _ensure_system_user,
    _quote_conninfo,
    _running_as_root,
    free_port,
)

ADMIN_USER = "pgbouncer_admin"


class PgbouncerUnavailable(RuntimeError):
    """No pgbouncer binary, or it would not start."""


def find_pgbouncer() -> Path | None:
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer") if os.access(p, os.X_OK)),
        None,
    )
    return Path(found) if found else None


def pgbouncer_version(binary: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else None


class TempPgbouncer:
    """pgbouncer on a free loopback port, forwarding `databases` to `server`.

    `databases` maps a pgbouncer database name to the server's database name. Clients log in
    with `auth_type=trust` (the server behind decides); the admin console is the database
    `pgbouncer` for user `pgbouncer_admin`. `settings` override the [pgbouncer] section.
    """

    def __init__(
        self,
        server: TempPostgres,
        databases: Mapping[str, str],
        *,
        settings: Mapping[str, Any] | None = None,
        users: tuple[str, ...] = (),
        passwords: Mapping[str, str] | None = None,
        binary: Path | None = None,
    ) -> None:
        binary = binary or find_pgbouncer()
        if binary is None:
            raise PgbouncerUnavailable(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
            )
        self.binary = binary
        self.server = server
        self.databases = dict(databases)
        self.settings = dict(settings or {})
        self.users = users
        # Plain-text passwords pgbouncer uses to log in to the server as each user (needed
        # when the server asks for scram-sha-256); clients still log in to pgbouncer by trust.
        self.passwords = dict(passwords or {})
        self.host = "127.0.0.1"
        self.port = 0
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def logfile(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "pgbouncer.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> TempPgbouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _config(self) -> str:
        assert self.base_dir is not None
        db_lines = [
            f"{name} = host={self.server.host} port={self.server.port} dbname={_quote_conninfo(target)}"
            for name, target in self.databases.items()
        ]
        options: dict[str, Any] = {
            "listen_addr": self.host,
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.base_dir / "userlist.txt"),
            "admin_users": ADMIN_USER,
            "stats_users": ADMIN_USER,
            "pool_mode": "transaction",
            "default_pool_size": 5,
            "max_client_conn": 200,
            "logfile": str(self.logfile),
            "pidfile": str(self.base_dir / "pgbouncer.pid"),
            "log_connections": 1,
            "log_disconnections": 1,
            "log_pooler_errors": 1,
            "ignore_startup_parameters": "extra_float_digits,options",
        }
        options.update(self.settings)
        lines = ["[databases]", *db_lines, "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in options.items()]
        return "\n".join(lines) + "\n"

    def start(self) -> TempPgbouncer:
        if self._process is not None:
            return self
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgslots-pgbouncer-"))
        self.base_dir.chmod(0o755)
        users = {ADMIN_USER, "postgres", *self.users, *self.passwords}
        (self.base_dir / "userlist.txt").write_text(
            "".join(f'"{u}" "{self.passwords.get(u, "")}"\n' for u in sorted(users))
        )
        (self.base_dir / "userlist.txt").chmod(0o600)
        run_as: dict[str, Any] = {}
        if _running_as_root():
            uid, gid = _ensure_system_user()
            os.chown(self.base_dir, uid, gid)
            for child in self.base_dir.iterdir():
                os.chown(child, uid, gid)
            run_as = {"user": uid, "group": gid, "extra_groups": []}
        last = ""
        for _attempt in range(3):
            self.port = free_port()
            config = self.base_dir / "pgbouncer.ini"
            config.write_text(self._config())
            with (self.base_dir / "stdout.log").open("ab") as out:
                self._process = subprocess.Popen(
                    [str(self.binary), str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    **run_as,
                )
            if self._wait_listening(15.0):
                return self
            last = (self.base_dir / "stdout.log").read_text(errors="replace")[-1500:]
            if self.logfile.exists():
                last += self.logfile.read_text(errors="replace")[-1500:]
            self._terminate()
        self.stop()
        raise PgbouncerUnavailable(f"pgbouncer did not start: {last.strip()}")

    def _wait_listening(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.5),
            ):
                return True
            time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        self._terminate()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def dsn(self, dbname: str, user: str = "postgres", **params: Any) -> str:
        parts = {"host": self.host, "port": self.port, "user": user, "dbname": dbname, **params}
        return " ".join(f"{k}={_quote_conninfo(str(v))}" for k, v in parts.items())

    def admin_dsn(self) -> str:
        return self.dsn("pgbouncer", ADMIN_USER)
