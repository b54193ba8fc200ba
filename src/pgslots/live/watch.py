"""`pgslots watch`: the snapshot, again and again, on the same single connection.

The connection opened first serves every snapshot. When it drops (server restart, a
`pg_terminate_backend`, a network cut) the loop records the gap and reconnects with an
exponential backoff, so a watch never adds a reconnect storm to a server in trouble: each
refused attempt briefly takes a slot too (domain reference §1.2). While the server refuses
the probe because it is full, every attempt is recorded as a refused snapshot: that is the
evidence a record file is for.

Only the first connection's failure for bad input (wrong DSN, port, password, a server that
is not PostgreSQL) stops the watch: once it has worked, the input is known to be right.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import psycopg

from pgslots.live.connect import ConnectFailure, ServerRefused, connect, parse_dsn
from pgslots.live.model import PgbouncerState, Snapshot, utc_millis
from pgslots.live.pgbouncer import connect_admin, read_state
from pgslots.live.probe import ProbeRequest, refused_snapshot
from pgslots.live.snapshot import take_snapshot
from pgslots.redact import redact_dsn

MAX_BACKOFF_SECONDS = 60.0


class Watcher:
    """Holds the one server connection (and the pgbouncer admin connection) between snapshots."""

    def __init__(self, request: ProbeRequest, *, interval: float) -> None:
        self.request = request
        self.interval = interval
        self.failures = 0  # consecutive snapshots that could not read the server
        self.connections_opened = 0
        self.reached = (
            False  # the server answered once (even if only to refuse us): the input is right
        )
        self._conn: psycopg.Connection[Any] | None = None
        self._admin: psycopg.Connection[Any] | None = None

    # -- one snapshot ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        server = self._server_snapshot()
        self.failures = 0 if server.ok else self.failures + 1
        if self.request.pgbouncer_dsn:
            state, note = self._pgbouncer()
            server = dataclasses.replace(
                server, pgbouncer=state, notes=(*server.notes, *([note] if note else []))
            )
        return server

    def _server_snapshot(self) -> Snapshot:
        target = self.request.server.target
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.request.server)
                self.connections_opened += 1
                self.reached = True
            except ServerRefused as refused:
                self.reached = True
                return refused_snapshot(self.request.server, refused)
            except ConnectFailure as failure:
                if not self.reached:
                    raise  # never worked: the input is wrong, or the server is not there at all
                return self._gap(f"cannot reconnect: {failure}")
        try:
            return take_snapshot(self._conn, target, self.request.options)
        except psycopg.errors.QueryCanceled as exc:
            return self._gap(
                f"snapshot query cancelled (statement_timeout): {str(exc).strip()}", keep=True
            )
        except psycopg.OperationalError as exc:
            return self._gap(f"connection lost: {str(exc).strip().splitlines()[0]}")

    def _gap(self, reason: str, keep: bool = False) -> Snapshot:
        if not keep:
            self._close_server()
        return Snapshot(
            taken_at=utc_millis(), target=self.request.server.target, unreachable=redact_dsn(reason)
        )

    def _pgbouncer(self) -> tuple[PgbouncerState | None, str | None]:
        dsn = self.request.pgbouncer_dsn
        assert dsn is not None
        try:
            if self._admin is None or self._admin.closed:
                self._admin = connect_admin(dsn, self.request.server.connect_timeout)
            admin_db = str(parse_dsn(dsn).get("dbname") or "pgbouncer")
            return read_state(self._admin, redact_dsn(dsn), admin_db), None
        except (ConnectFailure, psycopg.OperationalError) as exc:
            if self._admin is not None:
                self._admin.close()
            self._admin = None
            return None, f"pgbouncer not read: {str(exc).strip().splitlines()[0]}"

    # -- the loop -------------------------------------------------------------------------

    def next_delay(self) -> float:
        """The interval, doubled for each consecutive failure, up to a minute."""
        if self.failures == 0:
            return self.interval
        return min(
            self.interval * 2 ** (self.failures - 1), max(MAX_BACKOFF_SECONDS, self.interval)
        )

    def run(
        self,
        on_snapshot: Callable[[Snapshot], None],
        *,
        count: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Take snapshots until `count` is reached (forever when None); return how many."""
        taken = 0
        try:
            while count is None or taken < count:
                started = time.monotonic()
                on_snapshot(self.snapshot())
                taken += 1
                if count is not None and taken >= count:
                    break
                sleep(max(0.0, self.next_delay() - (time.monotonic() - started)))
        finally:
            self.close()
        return taken

    def _close_server(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._close_server()
        if self._admin is not None:
            with contextlib.suppress(psycopg.Error):
                self._admin.close()
            self._admin = None
