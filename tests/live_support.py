"""Shared helpers for the live tests: a server with roles and held client connections."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from pgslots.lab.postgres import PgBinaries, TempPostgres


@dataclasses.dataclass
class Held:
    """Client connections a test opened and keeps open."""

    connections: list[Any] = dataclasses.field(default_factory=list)

    def open(
        self,
        server: TempPostgres,
        user: str,
        dbname: str,
        application: str,
        n: int = 1,
        in_transaction: bool = False,
    ) -> None:
        for _ in range(n):
            conn = server.connect(user, dbname, application_name=application)
            if in_transaction:
                conn.execute("BEGIN")
                conn.execute("SELECT 1")
            self.connections.append(conn)

    def close(self) -> None:
        for conn in self.connections:
            with contextlib.suppress(Exception):
                conn.close()
        self.connections.clear()


@contextlib.contextmanager
def held() -> Iterator[Held]:
    connections = Held()
    try:
        yield connections
    finally:
        connections.close()


def slot_settings(
    binaries: PgBinaries, max_connections: int, superuser_reserved: int, reserved: int
) -> dict[str, int]:
    settings = {
        "max_connections": max_connections,
        "superuser_reserved_connections": superuser_reserved,
    }
    if binaries.major >= 16:
        settings["reserved_connections"] = reserved
    return settings


def make_roles(server: TempPostgres, *, app_limit: int | None = None) -> None:
    """app (ordinary), mon (pg_monitor, and pg_use_reserved_connections on 16+), plain (nothing)."""
    server.create_role("app", connection_limit=app_limit)
    monitor_groups = ("pg_monitor",) + (
        ("pg_use_reserved_connections",) if server.binaries.major >= 16 else ()
    )
    server.create_role("mon", member_of=monitor_groups)
    server.create_role("plain")


def pgslots(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgslots", *args], capture_output=True, text=True, timeout=timeout
    )


def wait_for(condition: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def probe_connections_in_log(server: TempPostgres) -> int:
    """Connections the server authorized for application_name=pgslots, from its own log."""
    text = server.logs.stderr.read_text(errors="replace")
    return sum(
        1
        for line in text.splitlines()
        if "connection authorized:" in line and "application_name=pgslots" in line
    )
